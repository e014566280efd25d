"""A producer whose sends return only once the broker acknowledged them (acks=all)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from capi_stream.errors import DependencyUnavailableError

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """One record to produce."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: Headers = field(default_factory=list)
    timestamp_ms: int | None = None


class ConfirmedProducer:
    """Wraps ``confluent_kafka.Producer``: ``send_all`` blocks until every record is acked.

    Raises ``DependencyUnavailableError`` when the broker cannot take a record, so callers
    never treat an unacknowledged record as delivered.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self._producer = Producer(config)

    def send_all(self, records: Sequence[OutgoingRecord], timeout: float = 30.0) -> None:
        errors: list[KafkaError] = []

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                errors.append(error)

        for record in records:
            self._produce(record, on_delivery)
        remaining = self._producer.flush(timeout)
        if remaining:
            raise DependencyUnavailableError(
                f"{remaining} record(s) not acknowledged in {timeout}s"
            )
        if errors:
            raise DependencyUnavailableError(f"broker refused records: {errors[0]}")

    def send(self, record: OutgoingRecord, timeout: float = 30.0) -> None:
        self.send_all([record], timeout)

    def _produce(self, record: OutgoingRecord, on_delivery: Any) -> None:
        kwargs: dict[str, Any] = {"key": record.key, "headers": record.headers}
        if record.timestamp_ms is not None:
            kwargs["timestamp"] = record.timestamp_ms
        while True:
            try:
                self._producer.produce(
                    record.topic, record.value, on_delivery=on_delivery, **kwargs
                )
                return
            except BufferError:
                # Local queue full: serve delivery reports to make room, then try again.
                self._producer.poll(0.1)

    @property
    def raw(self) -> Producer:
        """The underlying producer, for callers that manage delivery reports themselves."""
        return self._producer

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout)
