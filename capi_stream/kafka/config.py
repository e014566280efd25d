"""librdkafka configuration: typed fields for the keys we reason about, one exit point.

``KAFKA_EXTRA`` passes other options through, applied after our defaults so tuning keys
(``linger.ms``, ``compression.type``, SASL...) win. The keys that carry at-least-once are
never taken from it: ``check_passthrough`` refuses them with the reason, at settings load.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from capi_stream.errors import ConfigurationError

if TYPE_CHECKING:
    from capi_stream.settings import CapiSettings

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


@dataclass(frozen=True, slots=True)
class KafkaConfig:
    """Resolved client settings shared by every producer and consumer of a process."""

    bootstrap_servers: str
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    fetch_wait_max_ms: int = 100
    max_poll_interval_ms: int = 300_000
    # librdkafka logs every failed connection (FAIL) at level 3; errors reach us anyway.
    log_level: int = 2
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_passthrough(self.extra)

    @classmethod
    def from_settings(cls, settings: CapiSettings, bootstrap_servers: str) -> KafkaConfig:
        return cls(
            bootstrap_servers=bootstrap_servers,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
            fetch_wait_max_ms=settings.kafka_fetch_wait_max_ms,
            max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
            log_level=settings.kafka_log_level,
            extra=dict(settings.kafka_extra),
        )

    def producer_config(self, **overrides: Any) -> dict[str, Any]:
        """No-loss producer: acks from every in-sync replica, idempotent, bounded delivery."""
        return self._finish(
            {
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": 30_000,
                "compression.type": "lz4",
            },
            overrides,
        )

    def consumer_config(self, group_id: str, **overrides: Any) -> dict[str, Any]:
        """Group member that commits by hand, only after a message is fully handled."""
        return self._finish(
            {
                "group.id": group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                # Never 'latest': the embedded broker's ListOffsets LATEST is wrong.
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "cooperative-sticky",
                "session.timeout.ms": self.session_timeout_ms,
                "heartbeat.interval.ms": self.heartbeat_interval_ms,
                "fetch.wait.max.ms": self.fetch_wait_max_ms,
                "max.poll.interval.ms": self.max_poll_interval_ms,
                "topic.metadata.refresh.interval.ms": 5_000,
            },
            overrides,
        )

    def admin_config(self) -> dict[str, Any]:
        return self._finish({}, {})

    def _finish(self, base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "log_level": self.log_level,
            **base,
            **self.extra,
            **overrides,
        }
