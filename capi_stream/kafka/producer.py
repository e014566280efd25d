"""Producers whose sends count only once the broker acknowledged them (acks=all).

``ProducerBase`` is the one producer of the Kafka edge; ``ConfirmedProducer`` delivers
synchronously on it, ``AsyncConfirmedProducer`` (``capi_stream.kafka.async_producer``) on an
asyncio loop. The librdkafka producer inside is owned by a ``ClientLifecycle``: a fatal error, an
idempotent producer stuck re-initialising or a delivery that timed out gets it replaced
(``capi_stream.kafka.lifecycle``), so a broker restart never leaves a process unable to
produce. Whatever was not acknowledged when that happens raises, never passes as sent.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from capi_stream.errors import ClientUnrecoverableError, DependencyUnavailableError
from capi_stream.kafka.lifecycle import ClientLifecycle, ClientStatus, RecoveryPolicy

Headers = list[tuple[str, bytes]]

# How long one flush waits before checking whether the client was condemned meanwhile: a
# stuck producer is found in about a second, not after the whole send timeout.
_FLUSH_SLICE_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """One record to produce."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: Headers = field(default_factory=list)
    timestamp_ms: int | None = None


def discard_producer(producer: Producer) -> None:
    """Fail what a replaced producer still holds (its reports say purged) and let it go."""
    try:
        producer.purge(in_queue=True, in_flight=True, blocking=False)
        producer.poll(0)
    except KafkaException:  # a fatal client raises its error again: it is gone anyway
        return


class ProducerBase:
    """One ``confluent_kafka.Producer`` owned by a ``ClientLifecycle``: what the synchronous
    (``ConfirmedProducer``) and the asynchronous (``AsyncConfirmedProducer``) delivery share.

    It produces a record translating librdkafka's refusals (a fatal one condemns the client),
    serves callbacks, checks the broker, purges and closes; the delivery itself (waiting for
    the acknowledgements) is the subclass's.
    """

    def __init__(
        self,
        config: dict[str, Any],
        *,
        name: str = "producer",
        policy: RecoveryPolicy | None = None,
        watch_epoch: bool | None = None,
    ) -> None:
        if watch_epoch is None:
            watch_epoch = bool(config.get("enable.idempotence"))
        self.lifecycle: ClientLifecycle[Producer] = ClientLifecycle(
            name,
            Producer,
            config,
            dispose=discard_producer,
            policy=policy,
            watch_epoch=watch_epoch,
        )

    @property
    def _client(self) -> Producer:
        """The current librdkafka producer (replaced after a fatal error)."""
        return self.lifecycle.client

    def status(self) -> ClientStatus:
        return self.lifecycle.status()

    @property
    def unusable(self) -> bool:
        """Condemned (waiting to be replaced) or given up."""
        return self.lifecycle.condemned or self.lifecycle.gave_up

    def _produce(
        self, producer: Producer, record: OutgoingRecord, on_delivery: Any, what: str
    ) -> None:
        """Hand ``record`` to ``producer``; ``BufferError`` (local queue full) passes through.

        Raises:
            DependencyUnavailableError: refused (a fatal refusal condemns the client).
        """
        kwargs: dict[str, Any] = {"key": record.key}
        if record.headers:
            kwargs["headers"] = record.headers
        if record.timestamp_ms is not None:
            kwargs["timestamp"] = record.timestamp_ms
        try:
            producer.produce(record.topic, record.value, on_delivery=on_delivery, **kwargs)
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.fatal():
                self.lifecycle.condemn(f"produce refused: {error.str()}")
            raise DependencyUnavailableError(f"producer refused {what}: {exc}") from exc

    def _serve(self, producer: Producer, timeout: float) -> None:
        try:
            producer.poll(timeout)  # runs delivery, error and statistics callbacks
        except KafkaException as exc:  # a fatal error is raised here too, not only reported
            self.lifecycle.note_exception(exc)

    def _reach_broker(self, timeout: float) -> None:
        """A metadata round trip through the current producer.

        Raises:
            DependencyUnavailableError: no broker answered within ``timeout`` seconds.
        """
        try:
            self._client.list_topics(timeout=timeout)
        except KafkaException as exc:
            raise DependencyUnavailableError(f"broker unreachable: {exc}") from exc

    def purge(self) -> None:
        """Purge records not sent yet (a rewound batch produces them again); keeps in-flight
        ones, since purging those would upset idempotence for a client that stays."""
        producer = self._client
        try:
            producer.purge(in_queue=True, in_flight=False)
            producer.flush(0)
        except KafkaException as exc:
            self.lifecycle.note_exception(exc)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is still queued (bounded by ``timeout``); a condemned or given-up
        client is discarded instead, since a flush would only wait for the timeout."""
        if self.unusable:
            discard_producer(self._client)
            return
        try:
            self._client.flush(timeout)
        except KafkaException as exc:
            self.lifecycle.note_exception(exc)


class ConfirmedProducer(ProducerBase):
    """Synchronous delivery: ``send_all`` blocks until every record is acked.

    Raises ``DependencyUnavailableError`` when the broker cannot take a record, so callers
    never treat an unacknowledged record as delivered, and ``ClientUnrecoverableError`` once
    the producer was replaced too often without a success (the process should exit).
    """

    def ensure_usable(self) -> None:
        """Replace a condemned producer if its backoff has passed.

        Raises:
            DependencyUnavailableError: it is waiting to be replaced.
            ClientUnrecoverableError: recovery gave up.
        """
        if self.lifecycle.recover():
            return
        status = self.lifecycle.status()
        if self.lifecycle.gave_up:
            raise ClientUnrecoverableError(f"kafka producer: {status.detail}")
        raise DependencyUnavailableError(f"kafka producer recovering: {status.detail}")

    def check(self, timeout: float) -> None:
        """A metadata round trip through the current producer (readiness, outage checks).

        Raises:
            DependencyUnavailableError: no answer, or the producer is not usable.
        """
        self.ensure_usable()
        self._reach_broker(timeout)

    def send_all(self, records: Sequence[OutgoingRecord], timeout: float = 30.0) -> None:
        self.ensure_usable()
        producer = self._client
        errors: list[KafkaError] = []
        lifecycle = self.lifecycle

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            lifecycle.note_delivery(error)
            if error is not None:
                errors.append(error)

        for record in records:
            self._produce_waiting(producer, record, on_delivery)
        deadline = time.monotonic() + timeout
        remaining = len(producer)
        while remaining and not lifecycle.condemned:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                remaining = producer.flush(min(left, _FLUSH_SLICE_SECONDS))
            except KafkaException as exc:  # a fatal error is raised here, not only reported
                lifecycle.note_exception(exc)
                remaining = len(producer)
        if remaining:
            if not lifecycle.condemned:  # nothing heard in time: fate unknown, client suspect
                lifecycle.condemn(f"{remaining} record(s) not acknowledged in {timeout}s")
            raise DependencyUnavailableError(
                f"{remaining} record(s) not acknowledged: {lifecycle.status().detail}"
            )
        if errors:
            raise DependencyUnavailableError(f"broker refused records: {errors[0]}")

    def send(self, record: OutgoingRecord, timeout: float = 30.0) -> None:
        self.send_all([record], timeout)

    def _produce_waiting(
        self, producer: Producer, record: OutgoingRecord, on_delivery: Any
    ) -> None:
        while True:
            try:
                self._produce(producer, record, on_delivery, "a record")
                return
            except BufferError:
                # Local queue full: serve delivery reports to make room, then try again.
                self._serve(producer, 0.1)
            if self.lifecycle.condemned:
                raise DependencyUnavailableError(f"producer: {self.status().detail}")

    def serve_events(self) -> None:
        """Serve pending callbacks (errors, statistics) while no send is running, so a
        fatal error is seen between sends and the events do not pile up."""
        self._serve(self._client, 0)
