"""One batch: decode -> tenant -> contacts -> enrich -> hash | upsert -> send -> outcome.

``BatchProcessor.process`` returns the records to forward (retry tiers, dead letters); it
is ``prepare`` (CPU: everything before ``|``) then ``finish`` (I/O: the rest), which the
worker runs on two threads so one batch's I/O overlaps the next batch's CPU. It never
commits offsets and never produces: the worker produces the forwards with acks and
only then commits. The contact step links every event to its person and records what the
event teaches about them (one transaction per batch,
``consumers.pipeline.contacts``); the event then
carries ``contact_id`` and is enriched from the contact. ``DependencyUnavailableError``
(database down) escapes so the worker can replay the whole batch later without burning
attempts; the contact merge is idempotent, so a replay changes nothing twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from capi_stream.avro.codec import EventCodec
from capi_stream.errors import DecodeError, PermanentError
from capi_stream.event import ConversionEvent, EventKey
from capi_stream.kafka.producer import OutgoingRecord
from capi_stream.kafka.topics import TopicNames
from consumers.delays import TenantBlocks
from consumers.headers import EventIdentity, Failure, HopContext, build_headers
from consumers.pipeline.contacts import with_contact_id
from consumers.pipeline.enrich import ContactHints
from consumers.pipeline.outcomes import OutcomeBook
from consumers.pipeline.prepare import Prepared, prepare_event
from consumers.pipeline.redact import hash_identity
from consumers.pipeline.routing import describe_failure
from consumers.pipeline.sender import ConcurrentSender
from consumers.pipeline.tenants import TenantCache, TenantContext
from storage.events import AttemptOutcome, StoredEvent
from storage.models import EventStatus

logger = logging.getLogger(__name__)


class EventStore(Protocol):
    def upsert(self, rows: Sequence[dict[str, object]]) -> dict[EventKey, StoredEvent]: ...

    def record(self, outcomes: Sequence[AttemptOutcome]) -> None: ...


class ContactLinker(Protocol):
    def link(
        self,
        events: Sequence[ConversionEvent],
        default_country_by_tenant: Mapping[uuid.UUID, str | None],
    ) -> dict[EventKey, ContactHints]: ...


@dataclass(frozen=True, slots=True)
class Incoming:
    """A consumed record, reduced to what the pipeline reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    context: HopContext

    @property
    def location(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass(slots=True)
class Item:
    """One record's progress through the batch."""

    incoming: Incoming
    event: ConversionEvent | None = None
    tenant: TenantContext | None = None
    row_id: uuid.UUID | None = None
    done: bool = False


@dataclass(slots=True)
class BatchReport:
    """What a batch produced; counters feed the metrics."""

    forwards: list[OutgoingRecord] = field(default_factory=list)
    sent: int = 0
    expired: int = 0
    already_sent: int = 0
    dead_lettered: int = 0
    deferred: int = 0
    retried_by_topic: dict[str, int] = field(default_factory=dict)
    failed_by_class: dict[str, int] = field(default_factory=dict)
    send_seconds: list[float] = field(default_factory=list)


@dataclass(slots=True)
class PreparedBatch:
    """A batch between ``prepare`` and ``finish``: its book, and each event with its row."""

    book: OutcomeBook
    events: dict[EventKey, tuple[Item, Prepared]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    retry_delays_seconds: tuple[float, ...] = (60.0, 300.0, 1800.0, 7200.0)
    rate_limit_default_seconds: float = 60.0


class BatchProcessor:
    """Runs the pipeline for one batch of records."""

    def __init__(
        self,
        *,
        codec: EventCodec,
        topics: TopicNames,
        store: EventStore,
        contacts: ContactLinker,
        tenants: TenantCache,
        sender: ConcurrentSender,
        options: PipelineOptions,
        blocks: TenantBlocks | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.codec = codec
        self.topics = topics
        self.store = store
        self.contacts = contacts
        self.tenants = tenants
        self.sender = sender
        self.options = options
        self.blocks = blocks or TenantBlocks()
        self.clock = clock

    def process(self, records: Sequence[Incoming]) -> BatchReport:
        """The whole pipeline for one batch: ``finish(prepare(records))``."""
        return self.finish(self.prepare(records))

    def prepare(self, records: Sequence[Incoming]) -> PreparedBatch:
        """The CPU-bound half: decode, tenants, contacts, hash and build each row.

        Records that cannot become a row (undecodable, unknown tenant) are dead-lettered in
        the batch's book here; everything else waits in the returned batch for ``finish``.
        """
        now = self.clock()
        batch = PreparedBatch(OutcomeBook(self, BatchReport(), now))
        book = batch.book
        items = [Item(record) for record in records]
        for item in items:
            self._decode(item, book)
        live = [item for item in items if not item.done]
        self._resolve_tenants(live, book)
        live = [item for item in live if not item.done]
        unique: dict[EventKey, Item] = {}
        for item in live:
            assert item.event is not None
            key = (item.event.tenant_id, item.event.event_id)
            if key in unique:  # a duplicate inside one batch: the first copy decides
                item.done = True
                book.report.already_sent += 1
                continue
            unique[key] = item
        contacts = self._link_contacts(list(unique.values()))
        for key, item in unique.items():
            assert item.event is not None and item.tenant is not None
            result = prepare_event(
                item.event,
                contacts.get(key),
                default_country=item.tenant.default_country,
                now=now,
            )
            batch.events[key] = (item, result)
        return batch

    def finish(self, batch: PreparedBatch) -> BatchReport:
        """The I/O-bound half: upsert the rows, send what can be sent, record every outcome.

        Safe to run on another thread while the next batch is prepared: it touches only this
        batch, the sender, the tenant blocks and its own database transactions.
        """
        book = batch.book
        stored = self.store.upsert([result.row for _, result in batch.events.values()])
        for key, (item, result) in batch.events.items():
            state = stored[key]
            item.row_id = state.id
            if state.sent_to_meta:
                item.done = True
                book.report.already_sent += 1
            elif result.status == EventStatus.EXPIRED:
                book.expire(item)
            elif result.error is not None:
                book.dead_letter(item, result.error, attempt=item.incoming.context.attempt)
            else:
                assert result.server_event is not None
                book.queue(item, result.server_event)
        book.send_queued()
        self.store.record(book.outcomes)
        return book.report

    def _link_contacts(self, items: Sequence[Item]) -> dict[EventKey, ContactHints]:
        """Link and record every event's contact; each event then carries its ``contact_id``."""
        events = [item.event for item in items if item.event is not None]
        countries = {i.tenant.tenant_id: i.tenant.default_country for i in items if i.tenant}
        contacts = self.contacts.link(events, countries)
        for item in items:
            assert item.event is not None
            hints = contacts.get((item.event.tenant_id, item.event.event_id))
            if hints is not None and hints.contact_id != item.event.contact_id:
                item.event = with_contact_id(item.event, hints.contact_id)
        return contacts

    def _decode(self, item: Item, book: OutcomeBook) -> None:
        try:
            item.event = self.codec.decode(item.incoming.value)
        except DecodeError as exc:
            book.dead_letter(item, exc, attempt=item.incoming.context.attempt)

    def _resolve_tenants(self, items: Sequence[Item], book: OutcomeBook) -> None:
        for item in items:
            assert item.event is not None
            try:
                item.tenant = self.tenants.get(item.event.tenant_id)
            except PermanentError as exc:
                book.dead_letter(item, exc, attempt=item.incoming.context.attempt)

    def forward(
        self,
        item: Item,
        *,
        topic: str,
        attempt: int,
        due_ms: int | None,
        failure: Failure,
        now_ms: int,
    ) -> OutgoingRecord:
        """The next hop of ``item``: hashed event (or original bytes if undecodable)."""
        incoming = item.incoming
        identity: EventIdentity | None = None
        value = incoming.value
        if item.event is not None:
            event = item.event
            identity = EventIdentity(str(event.tenant_id), event.event_id, event.event_name)
            country = item.tenant.default_country if item.tenant else None
            value = self.codec.encode(hash_identity(event, country))
        headers = build_headers(
            incoming.context,
            attempt=attempt,
            due_ms=due_ms,
            failure=failure,
            failed_at_ms=now_ms,
            event=identity,
        )
        return OutgoingRecord(topic, value, key=incoming.key, headers=headers)


__all__ = [
    "BatchProcessor",
    "BatchReport",
    "ContactLinker",
    "EventStore",
    "Incoming",
    "Item",
    "PipelineOptions",
    "PreparedBatch",
    "describe_failure",
]
