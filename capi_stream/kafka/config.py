"""librdkafka configuration: typed fields for the keys we reason about, one exit point.

``KAFKA_EXTRA`` passes other options through, applied after our defaults so tuning keys
(``linger.ms``, ``compression.type``, SASL...) win. The keys that carry at-least-once are
never taken from it: ``check_passthrough`` refuses them with the reason, at settings load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from capi_stream.kafka.guarantees import check_passthrough

if TYPE_CHECKING:
    from capi_stream.settings import CapiSettings


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
    # False only for the durable embedded broker: Tansu's s3 engine records an idempotent
    # producer's sequence before the batch, so a retry across a broker crash is answered
    # DUPLICATE_SEQUENCE_NUMBER (librdkafka: delivered) for a batch never written. One
    # request in flight keeps per-key order; a retried duplicate is deduped by event_id.
    idempotence: bool = True

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
                "enable.idempotence": self.idempotence,
                **({} if self.idempotence else {"max.in.flight.requests.per.connection": 1}),
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
