"""The publisher library: put a ConversionEvent on the main topic and return once it is acked.

Records are Avro (the process codec), keyed by person without asking a database
(``build_key``), so one person's events stay on one partition and reach the worker in order.
The producer is ``acks=all`` and idempotent (``KafkaConfig.producer_config``);
``message.timeout.ms`` is the publish timeout, so librdkafka gives up no later than the
caller does. A send that is not acknowledged raises ``DependencyUnavailableError``: nothing
un-acked is ever reported as published.

Two front ends over one record format:

* ``EventPublisher``: synchronous (CLI, scripts, ``publish_event``).
* ``AsyncEventPublisher``: for the ASGI app, on ``AsyncConfirmedProducer``
  (``capi_stream/kafka/async_producer.py``): ``produce()`` never blocks the event loop and
  the loop itself serves the delivery reports.

Both deliver on the Kafka edge's one producer base (``capi_stream/kafka/producer.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from capi_stream.avro.codec import EventCodec, build_codec
from capi_stream.errors import EventValidationError
from capi_stream.event import SOURCE_ID_FIELDS, ConversionEvent
from capi_stream.kafka.async_producer import EXPIRY_SCAN_MARGIN_SECONDS, AsyncConfirmedProducer
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.lifecycle import ClientStatus, RecoveryPolicy
from capi_stream.kafka.producer import ConfirmedProducer, OutgoingRecord
from capi_stream.runtime import resolve_bootstrap
from capi_stream.settings import CapiSettings
from meta_capi.hashing import hash_email, hash_phone

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
    except UnicodeEncodeError as exc:  # a lone surrogate in the id's key: no UTF-8 form
        raise EventValidationError(
            "invalid event: tenant_id, source and source_event_id must be valid Unicode text",
            field="source_event_id",
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
        self._producer.send(record, timeout=self._timeout + EXPIRY_SCAN_MARGIN_SECONDS)
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


class AsyncEventPublisher:
    """Asynchronous publisher for the web app; one producer per process, polled by its loop
    (``AsyncConfirmedProducer``: delivery reports served on the event loop's thread).

    The producer is owned by a ``ClientLifecycle``: when it becomes unusable (fatal error,
    stuck idempotent producer, a delivery timed out) its outstanding records are failed at
    once (503, the sender retries: their fate is unknown) and a fresh producer replaces it
    on this loop. While no producer is usable every publish fails fast. If recovery gives up,
    ``on_give_up`` is called once (``capi serve`` shuts down and exits non-zero).
    """

    def __init__(
        self,
        kafka: KafkaConfig,
        topic: str,
        codec: EventCodec,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        policy: RecoveryPolicy | None = None,
        on_give_up: Callable[[], None] | None = None,
    ) -> None:
        self.topic = topic
        self._codec = codec
        self._producer = AsyncConfirmedProducer(
            _producer_config(kafka, timeout_seconds),
            timeout_seconds=timeout_seconds,
            name="webhook producer",
            policy=policy,
            on_give_up=on_give_up,
        )
        self.lifecycle = self._producer.lifecycle

    def status(self) -> ClientStatus:
        return self._producer.status()

    async def publish(self, event: ConversionEvent, *, default_country: str | None = None) -> None:
        """Send ``event``; returns once the broker acknowledged it.

        ``default_country`` (the tenant's) only resolves a national phone for the key.

        Raises:
            DependencyUnavailableError: refused, timed out, the local queue is full, or the
                producer is being replaced.
        """
        key = build_key(event, default_country)
        await self._producer.send(OutgoingRecord(self.topic, self._codec.encode(event), key=key))

    def check_broker(self, timeout: float) -> None:
        """Blocking readiness check (run it in a thread): a usable producer that reaches a broker.

        Raises:
            DependencyUnavailableError: the producer is being replaced or gave up, or no
                broker answered within ``timeout`` seconds.
        """
        self._producer.check_broker(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is still queued (bounded by ``timeout``)."""
        self._producer.close(timeout)
