"""The librdkafka keys that carry capi-stream's guarantees, refused from ``KAFKA_EXTRA``.

Checked when the settings load (``capi_stream.settings``) and again when a
``KafkaConfig`` is built, so no path lets a passthrough switch off at-least-once.
"""

from __future__ import annotations

from collections.abc import Iterable

from capi_stream.errors import ConfigurationError

__all__ = ["PROTECTED_KEYS", "check_passthrough"]

_AT_LEAST_ONCE = "capi-stream sets it to keep at-least-once delivery"
# Key (librdkafka names and aliases) -> why KAFKA_EXTRA may not set it.
PROTECTED_KEYS: dict[str, str] = {
    "acks": _AT_LEAST_ONCE + " (acks=all)",
    "request.required.acks": _AT_LEAST_ONCE + " (acks=all)",
    "enable.idempotence": _AT_LEAST_ONCE + " (no duplicates, no reordering on retry)",
    # Only up to 5 keeps idempotent ordering; librdkafka caps it itself while idempotence is
    # on, and idempotence cannot be switched off here, so there is nothing left to tune.
    "max.in.flight.requests.per.connection": _AT_LEAST_ONCE + " (bounded by idempotence)",
    "max.in.flight": _AT_LEAST_ONCE + " (bounded by idempotence)",
    "transactional.id": "capi-stream's producers are not transactional",
    "enable.auto.commit": _AT_LEAST_ONCE + " (offsets committed only after handling)",
    "enable.auto.offset.store": _AT_LEAST_ONCE + " (offsets stored only after handling)",
    "isolation.level": _AT_LEAST_ONCE + " (read only committed records)",
    "auto.offset.reset": "'latest' would skip records a new group never saw; capi-stream "
    "uses 'earliest'",
    "partition.assignment.strategy": "the worker's rebalance handling relies on cooperative-sticky",
    "group.id": "set per command (CONSUMER_GROUP, --group)",
    "bootstrap.servers": "set it with KAFKA_BOOTSTRAP_SERVERS",
    "session.timeout.ms": "set it with KAFKA_SESSION_TIMEOUT_MS",
    "heartbeat.interval.ms": "set it with KAFKA_HEARTBEAT_INTERVAL_MS",
    "fetch.wait.max.ms": "set it with KAFKA_FETCH_WAIT_MAX_MS",
    "max.poll.interval.ms": "set it with KAFKA_MAX_POLL_INTERVAL_MS",
}


def check_passthrough(keys: Iterable[str]) -> None:
    """Refuse passthrough options that would override a guarantee or a typed setting.

    Raises:
        ConfigurationError: names the first offending key and why it is refused.
    """
    for key in keys:
        normalized = key.strip().lower()
        # librdkafka accepts topic-level keys with a "topic." prefix too (topic.acks).
        bare = normalized.removeprefix("topic.")
        reason = PROTECTED_KEYS.get(normalized) or PROTECTED_KEYS.get(bare)
        if reason is not None:
            raise ConfigurationError(f"KAFKA_EXTRA may not set {key!r}: {reason}")
