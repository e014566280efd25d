"""The publisher library: put a ConversionEvent on the main topic and return once it is acked.

Records are Avro (the process codec), keyed by person without asking a database
(``build_key``), so one person's events stay on one partition and reach the worker in order.
The producer is ``acks=all`` and idempotent (``KafkaConfig.producer_config``);
``message.timeout.ms`` is the publish timeout, so librdkafka gives up no later than the
caller does. A send that is not acknowledged raises ``DependencyUnavailableError``: nothing
un-acked is ever reported as published.

Two front ends over one record format:

* ``EventPublisher``: synchronous (CLI, scripts, ``publish_event``).
* ``AsyncEventPublisher``: for the ASGI app. ``produce()`` never blocks the event loop; a
  background thread serves delivery reports (``poll``) and resolves each request's future
  through ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from pydantic import ValidationError

from capi_stream.avro_codec import EventCodec, build_codec
from capi_stream.errors import DependencyUnavailableError, EventValidationError
from capi_stream.event import ConversionEvent
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.producer import ConfirmedProducer, OutgoingRecord
from capi_stream.runtime import resolve_bootstrap
from capi_stream.settings import CapiSettings
from meta_capi.hashing import hash_email, hash_phone
from storage.contact_facts import SOURCE_ID_FIELDS

__all__ = [
    "AsyncEventPublisher",
    "EventPublisher",
    "build_key",
    "coerce_event",
    "publish_event",
]

DEFAULT_TIMEOUT_SECONDS = 10.0
# Every publish waits for its ack, so linger is added to each webhook's latency; at 1 ms the
# records that arrive during one round trip still share a batch (acks=all, idempotent).
PUBLISH_LINGER_MS = 1
# librdkafka scans for expired messages about once a second; wait that much longer ourselves.
_EXPIRY_SCAN_MARGIN = 1.5


def _person(event: ConversionEvent, default_country: str | None) -> str:
    if event.contact_id is not None:
        return str(event.contact_id)
    for email in event.user.emails:
        if (digest := hash_email(email)) is not None:
            return f"em:{digest}"
    for phone in event.user.phones:
        if (digest := hash_phone(phone, default_country)) is not None:
            return f"ph:{digest}"
    ids = event.source_ids
    for kind in SOURCE_ID_FIELDS:  # the order contacts link on
        if (value := getattr(ids, kind)) is not None:
            return f"{kind}:{value}"
    return event.source_event_id


def build_key(event: ConversionEvent, default_country: str | None = None) -> bytes:
    """The partition key: one person per partition, so the worker sees their events in order.

    ``{tenant_id}:`` then the first that the event carries: our ``contact_id`` (API
    publishers may know it); ``em:`` + the SHA-256 of the first normalised email; ``ph:`` +
    the SHA-256 of the first phone (``default_country`` resolves national numbers); the first
    source id prefixed by its kind (``mc_subscriber_id:...``, ``ghl_contact_id:...``,
    ``stripe_customer_id:...``, ``perspective_contact_id:...``, ``denefits_contract_code:...``);
    else the ``source_event_id``. No database is read: the email and phone hashes are the ones
    the worker links contacts on, so a Lead from the chatbot and a Stripe payment for the
    same email land on one partition and are merged in the order they were received.
    """
    return f"{event.tenant_id}:{_person(event, default_country)}".encode()


def coerce_event(data: ConversionEvent | Mapping[str, Any]) -> ConversionEvent:
    """Validate ``data`` into an event; a missing ``event_id`` is derived from the business key.

    Raises:
        EventValidationError: the data is not a valid ConversionEvent.
    """
    if isinstance(data, ConversionEvent):
        return data
    fields = dict(data)
    try:
        if fields.get("event_id"):
            return ConversionEvent.model_validate(fields)
        fields.pop("event_id", None)
        for required in ("tenant_id", "source", "source_event_id"):
            if not fields.get(required):
                raise EventValidationError(f"{required} is required", field=required)
        return ConversionEvent.create(
            tenant_id=fields.pop("tenant_id"),
            source=fields.pop("source"),
            source_event_id=fields.pop("source_event_id"),
            **fields,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise EventValidationError(
            f"invalid event: {where}: {first['msg']} ({exc.error_count()} error(s))", field=where
        ) from exc


def _producer_config(kafka: KafkaConfig, timeout_seconds: float) -> dict[str, Any]:
    overrides: dict[str, Any] = {"message.timeout.ms": max(1, int(timeout_seconds * 1000))}
    if "linger.ms" not in kafka.extra:  # an operator's explicit choice still wins
        overrides["linger.ms"] = PUBLISH_LINGER_MS
    return kafka.producer_config(**overrides)


class EventPublisher:
    """Synchronous publisher: ``publish`` blocks until the broker acknowledged the event."""

    def __init__(
        self,
        kafka: KafkaConfig,
        topic: str,
        codec: EventCodec,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._topic = topic
        self._codec = codec
        self._timeout = timeout_seconds
        self._producer = ConfirmedProducer(_producer_config(kafka, timeout_seconds))

    def publish(
        self, data: ConversionEvent | Mapping[str, Any], *, default_country: str | None = None
    ) -> ConversionEvent:
        """Validate, encode and send one event; returns the event as published.

        ``default_country`` (the tenant's) only resolves a national phone for the key.

        Raises:
            EventValidationError: the data is not a valid event.
            DependencyUnavailableError: the broker did not acknowledge it in time.
        """
        event = coerce_event(data)
        key = build_key(event, default_country)
        record = OutgoingRecord(self._topic, self._codec.encode(event), key=key)
        self._producer.send(record, timeout=self._timeout + _EXPIRY_SCAN_MARGIN)
        return event

    def close(self) -> None:
        self._producer.close(self._timeout)

    def __enter__(self) -> EventPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def publish_event(
    data: ConversionEvent | Mapping[str, Any],
    *,
    settings: CapiSettings,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> ConversionEvent:
    """One-shot publish with a producer built from ``settings`` (scripts, ``capi publish``).

    Identity fields may already be SHA-256 hex digests: the event model keeps them as they are.
    """
    kafka = KafkaConfig.from_settings(settings, resolve_bootstrap(settings))
    codec = build_codec(settings.schema_registry_url, settings.topic_main)
    with EventPublisher(kafka, settings.topic_main, codec, timeout_seconds=timeout_seconds) as pub:
        return pub.publish(data)


def _resolve(future: asyncio.Future[None], error: KafkaError | None) -> None:
    if future.done():  # the caller gave up (timeout, cancelled request)
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(DependencyUnavailableError(f"broker did not take the event: {error}"))


def _expire(future: asyncio.Future[None], timeout: float) -> None:
    if not future.done():
        error = DependencyUnavailableError(f"event not acknowledged within {timeout}s")
        future.set_exception(error)


class AsyncEventPublisher:
    """Asynchronous publisher for the web app; one producer and one poll thread per process."""

    def __init__(
        self,
        kafka: KafkaConfig,
        topic: str,
        codec: EventCodec,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.topic = topic
        self._codec = codec
        self._timeout = timeout_seconds
        self._producer = Producer(_producer_config(kafka, timeout_seconds))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start serving delivery reports (idempotent)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._serve, name="kafka-poll", daemon=True)
            self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    async def publish(self, event: ConversionEvent, *, default_country: str | None = None) -> None:
        """Send ``event``; returns once the broker acknowledged it.

        ``default_country`` (the tenant's) only resolves a national phone for the key.

        Raises:
            DependencyUnavailableError: refused, timed out, or the local queue is full.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            # RuntimeError: the loop closed during shutdown; nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, future, error)

        value = self._codec.encode(event)
        try:
            self._producer.produce(
                self.topic, value, key=build_key(event, default_country), on_delivery=on_delivery
            )
        except BufferError as exc:
            raise DependencyUnavailableError("producer queue is full") from exc
        except KafkaException as exc:
            raise DependencyUnavailableError(f"producer refused the event: {exc}") from exc
        # A bare timer instead of asyncio.wait_for (a task and two callbacks per request).
        timer = loop.call_later(self._timeout + _EXPIRY_SCAN_MARGIN, _expire, future, self._timeout)
        try:
            await future
        finally:
            timer.cancel()

    def check_broker(self, timeout: float) -> None:
        """Blocking metadata round trip (for readiness; run it in a thread).

        Raises:
            DependencyUnavailableError: no broker answered within ``timeout`` seconds.
        """
        try:
            self._producer.list_topics(timeout=timeout)
        except KafkaException as exc:
            raise DependencyUnavailableError(f"broker unreachable: {exc}") from exc

    def close(self, timeout: float = 10.0) -> None:
        """Stop the poll thread and deliver what is still queued (bounded by ``timeout``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._producer.flush(timeout)
