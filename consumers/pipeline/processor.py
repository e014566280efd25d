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
from capi_stream.errors import PermanentError
from capi_stream.event import ConversionEvent, EventKey
from capi_stream.kafka.topics import TopicNames
from consumers.delays import TenantBlocks
from consumers.pipeline.contacts import with_contact_id
from consumers.pipeline.enrich import ContactHints
from consumers.pipeline.forward import Forwarder
from consumers.pipeline.items import BatchReport, Incoming, Item, PipelineOptions
from consumers.pipeline.outcomes import OutcomeBook, OutcomeServices
from consumers.pipeline.prepare import Prepared, prepare_event
from consumers.pipeline.routing import describe_failure
from consumers.pipeline.sender import ConcurrentSender
from consumers.pipeline.tenants import TenantCache
from storage.events import AttemptOutcome, StoredEvent
from storage.models import EventStatus

logger = logging.getLogger(__name__)


class EventStore(Protocol):
    def upsert(self, rows: Sequence[dict[str, object]]) -> dict[EventKey, StoredEvent]:
        """Insert or refresh rows; a row's ``send_attempts`` (0/1) counts a send about to be
        made (``storage.events.upsert_events``)."""
        ...

    def record(self, outcomes: Sequence[AttemptOutcome]) -> None: ...


class ContactLinker(Protocol):
    def link(
        self,
        events: Sequence[ConversionEvent],
        default_country_by_tenant: Mapping[uuid.UUID, str | None],
    ) -> dict[EventKey, ContactHints]: ...


@dataclass(slots=True)
class PreparedBatch:
    """A batch between ``prepare`` and ``finish``: its book, and each event with its row."""

    book: OutcomeBook
    events: dict[EventKey, tuple[Item, Prepared]] = field(default_factory=dict)


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
        self.forward = Forwarder(codec)
        self._services = OutcomeServices(
            clock=clock,
            forward=self.forward,
            topics=topics,
            blocks=self.blocks,
            tenants=tenants,
            sender=sender,
            options=options,
        )

    def process(self, records: Sequence[Incoming]) -> BatchReport:
        """The whole pipeline for one batch: ``finish(prepare(records))``."""
        return self.finish(self.prepare(records))

    def prepare(self, records: Sequence[Incoming]) -> PreparedBatch:
        """The CPU-bound half: decode, tenants, contacts, hash and build each row.

        Records that cannot become a row (undecodable, unknown tenant) are dead-lettered in
        the batch's book here; everything else waits in the returned batch for ``finish``.
        """
        now = self.clock()
        batch = PreparedBatch(OutcomeBook(self._services, BatchReport(), now))
        book = batch.book
        decode, tenant_of = self.codec.decode, self.tenants.get
        unique: dict[EventKey, Item] = {}
        for record in records:  # one pass: decode, tenant, the first copy of each event
            item = Item(record)
            try:
                event = item.event = decode(record.value)
                item.tenant = tenant_of(event.tenant_id)
            except PermanentError as exc:  # undecodable (DecodeError), or no such tenant
                book.dead_letter(item, exc, attempt=record.context.attempt)
                continue
            key = (event.tenant_id, event.event_id)
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
        # Decided once, before the upsert counts the attempts of the events to be sent.
        tenant_ids = {item.tenant.tenant_id for item, _ in batch.events.values() if item.tenant}
        blocked = book.blocked_tenants(tenant_ids)
        rows = []
        for item, result in batch.events.values():
            assert item.tenant is not None
            sends = (
                result.error is None
                and result.status != EventStatus.EXPIRED
                and item.tenant.tenant_id not in blocked
            )
            rows.append({**result.row, "send_attempts": int(sends)})
        stored = self.store.upsert(rows)
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
        book.send_queued(blocked)
        self.store.record(book.outcomes)
        return book.report

    def _link_contacts(self, items: Sequence[Item]) -> dict[EventKey, ContactHints]:
        """Link and record every event's contact; each event then carries its ``contact_id``."""
        events = [item.event for item in items if item.event is not None]
        countries = {i.tenant.tenant_id: i.tenant.default_country for i in items if i.tenant}
        contacts = self.contacts.link(events, countries)
        for item in items:
            event = item.event
            assert event is not None
            hints = contacts.get((event.tenant_id, event.event_id))
            if hints is not None and hints.contact_id != event.contact_id:
                item.event = with_contact_id(event, hints.contact_id)
        return contacts


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
