"""The publisher library: put a ConversionEvent on the main topic and return once it is acked.

Records are Avro (the process codec), keyed by person without asking a database
(``build_key``), so one person's events stay on one partition and reach the worker in order.
The producer is ``acks=all`` and idempotent (``KafkaConfig.producer_config``);
``message.timeout.ms`` is the publish timeout, so librdkafka gives up no later than the
caller does. A send that is not acknowledged raises ``DependencyUnavailableError``: nothing
un-acked is ever reported as published.

Two front ends over one record format:

* ``EventPublisher``: synchronous (CLI, scripts, ``publish_event``).
* ``AsyncEventPublisher``: for the ASGI app. ``produce()`` never blocks the event loop, and
  the loop itself serves delivery reports: while anything is in flight, a timer calls
  ``poll(0)`` every millisecond and the callbacks resolve each request's future in place.
  The records of one loop iteration are produced together, at its end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from functools import partial
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from pydantic import ValidationError

from capi_stream.avro.codec import EventCodec, build_codec
from capi_stream.errors import DependencyUnavailableError, EventValidationError
from capi_stream.event import SOURCE_ID_FIELDS, ConversionEvent
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.lifecycle import ClientLifecycle, ClientStatus, RecoveryPolicy
from capi_stream.kafka.producer import ConfirmedProducer, OutgoingRecord, discard_producer
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
# librdkafka scans for expired messages about once a second; wait that much longer ourselves.
_EXPIRY_SCAN_MARGIN = 1.5
# How often the event loop serves delivery reports while any are outstanding; acks take a
# few milliseconds, so this adds at most about a millisecond to a webhook's latency.
_POLL_INTERVAL_SECONDS = 0.001
# While the producer waits to be replaced, the loop looks again this often (no traffic
# needed: a pod taken out of rotation by its readiness must still heal itself).
_RECOVERY_POLL_SECONDS = 0.05
# With nothing in flight the loop still polls now and then: a fatal error or a stuck
# producer is then noticed (readiness) before the next webhook, and librdkafka's error and
# statistics events do not pile up.
_IDLE_POLL_SECONDS = 1.0


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


def _report(
    note: Callable[[KafkaError | None], None],
    future: asyncio.Future[None],
    error: KafkaError | None,
    _message: Message,
) -> None:
    note(error)
    _resolve(future, error)


def _expire(future: asyncio.Future[None], timeout: float) -> None:
    if not future.done():
        error = DependencyUnavailableError(f"event not acknowledged within {timeout}s")
        future.set_exception(error)


class AsyncEventPublisher:
    """Asynchronous publisher for the web app; one producer per process, polled by its loop.

    Everything happens on the event loop's thread: no poll thread to hand the GIL to and
    to wake the loop once per delivery report. Use one loop at a time; ``close`` on that
    loop's thread or after it has ended, since it runs the callbacks where it is called.

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
        self._timeout = timeout_seconds
        self.lifecycle: ClientLifecycle[Producer] = ClientLifecycle(
            "webhook producer", Producer, _producer_config(kafka, timeout_seconds),
            dispose=discard_producer, policy=policy, watch_epoch=True,
        )  # fmt: skip
        self._on_give_up = on_give_up
        self._gave_up_reported = False
        self._purged: Producer | None = None  # the condemned client already purged
        self._poller: asyncio.TimerHandle | None = None
        self._poller_loop: asyncio.AbstractEventLoop | None = None
        self._outbox: list[tuple[bytes, bytes, asyncio.Future[None]]] = []

    @property
    def _producer(self) -> Producer:
        return self.lifecycle.client

    def status(self) -> ClientStatus:
        return self.lifecycle.status()

    def _poll(self) -> None:
        self._poller = None
        try:
            self._producer.poll(0)  # runs the delivery callbacks (and error/stats callbacks)
        except KafkaException as exc:  # a fatal error is raised here too, not only reported
            self.lifecycle.note_exception(exc)
        unusable = self.lifecycle.condemned or self.lifecycle.gave_up
        if unusable and not self._recover():  # come back until a fresh producer is in place
            self._schedule_poll(asyncio.get_running_loop(), _RECOVERY_POLL_SECONDS)
            return
        loop = asyncio.get_running_loop()
        if len(self._producer):  # still in flight: come back
            self._schedule_poll(loop)
        else:  # idle: error and statistics events must still be served (and not pile up)
            self._schedule_poll(loop, _IDLE_POLL_SECONDS)

    def _recover(self) -> bool:
        """Replace a condemned producer when its backoff allows; True if one is usable."""
        condemned = self._producer
        if self.lifecycle.condemned and self._purged is not condemned:
            # Its outstanding records are of unknown fate: answer them 503 now, not at expiry.
            discard_producer(condemned)
            self._purged = condemned
        if self.lifecycle.recover():
            self._purged = None
            return True
        if self.lifecycle.gave_up and not self._gave_up_reported:
            self._gave_up_reported = True
            if self._on_give_up is not None:
                self._on_give_up()
        return False

    def _produce_outbox(self, loop: asyncio.AbstractEventLoop) -> None:
        # The records of one loop iteration go out back to back: librdkafka wakes its broker
        # thread (a syscall, ~15 us here) for a record that finds it asleep, not for the ones
        # that follow before it has woken.
        outbox, self._outbox = self._outbox, []
        if not self._recover():
            detail = self.lifecycle.status().detail
            for _value, _key, future in outbox:
                if not future.done():
                    future.set_exception(DependencyUnavailableError(f"producer: {detail}"))
            self._schedule_poll(loop, _RECOVERY_POLL_SECONDS)
            return
        producer = self._producer
        report = self.lifecycle.note_delivery
        for value, key, future in outbox:
            try:
                producer.produce(
                    self.topic, value, key=key, on_delivery=partial(_report, report, future)
                )
            except BufferError:
                future.set_exception(DependencyUnavailableError("producer queue is full"))
            except KafkaException as exc:
                error = exc.args[0]
                if isinstance(error, KafkaError) and error.fatal():
                    self.lifecycle.condemn(f"produce refused: {error.str()}")
                future.set_exception(
                    DependencyUnavailableError(f"producer refused the event: {exc}")
                )
        self._schedule_poll(loop)

    def _schedule_poll(
        self, loop: asyncio.AbstractEventLoop, delay: float = _POLL_INTERVAL_SECONDS
    ) -> None:
        # A timer left on a loop that has ended never fires: a new loop gets its own. An
        # idle poll due later than this one is brought forward.
        current = self._poller
        if current is not None and self._poller_loop is loop:
            if current.when() <= loop.time() + delay:
                return
            current.cancel()
        self._poller = loop.call_later(delay, self._poll)
        self._poller_loop = loop

    async def publish(self, event: ConversionEvent, *, default_country: str | None = None) -> None:
        """Send ``event``; returns once the broker acknowledged it.

        ``default_country`` (the tenant's) only resolves a national phone for the key.

        Raises:
            DependencyUnavailableError: refused, timed out, the local queue is full, or the
                producer is being replaced.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        record = (self._codec.encode(event), build_key(event, default_country), future)
        self._outbox.append(record)
        if len(self._outbox) == 1:
            loop.call_soon(self._produce_outbox, loop)
        # A bare timer instead of asyncio.wait_for (a task and two callbacks per request).
        timer = loop.call_later(self._timeout + _EXPIRY_SCAN_MARGIN, _expire, future, self._timeout)
        try:
            await future
        finally:
            timer.cancel()

    def check_broker(self, timeout: float) -> None:
        """Blocking readiness check (run it in a thread): a usable producer that reaches a broker.

        The producer's own state comes first: a metadata call succeeds against a restarted
        broker while a stuck producer still cannot produce.

        Raises:
            DependencyUnavailableError: the producer is being replaced or gave up, or no
                broker answered within ``timeout`` seconds.
        """
        status = self.lifecycle.status()
        if not status.ready:
            raise DependencyUnavailableError(f"producer {status.state.value}: {status.detail}")
        try:
            self._producer.list_topics(timeout=timeout)
        except KafkaException as exc:
            raise DependencyUnavailableError(f"broker unreachable: {exc}") from exc

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is still queued (bounded by ``timeout``)."""
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        if self.lifecycle.condemned or self.lifecycle.gave_up:
            discard_producer(self._producer)  # a flush would only wait for the timeout
            return
        try:
            self._producer.flush(timeout)
        except KafkaException as exc:
            self.lifecycle.note_exception(exc)
