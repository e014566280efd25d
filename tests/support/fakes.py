"""Small fakes of the pipeline's seams (``EventStore``, ``ContactLinker``, ``MetaSender``) and
helpers to build a ``BatchProcessor`` on them: the batch runs without a broker, a database
or Meta."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from capi_stream.avro.codec import build_codec
from capi_stream.event import ConversionEvent, EventKey
from capi_stream.kafka.topics import TopicNames
from consumers.headers import HopContext, Origin
from consumers.pipeline.enrich import ContactHints
from consumers.pipeline.processor import BatchProcessor, Incoming, PipelineOptions
from consumers.pipeline.sender import ConcurrentSender
from consumers.pipeline.store import TenantRecord
from consumers.pipeline.tenants import TenantCache
from meta_capi.client import BatchOutcome, SendResult
from meta_capi.errors import MetaAPIError, MetaRateLimitedError
from meta_capi.server_event import ServerEvent
from storage.events import AttemptOutcome, StoredEvent

CODEC = build_codec()
TOPICS = TopicNames(main="t")
TENANT = uuid.UUID("00000000-0000-0000-0000-0000000000bb")
START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CREDENTIALS = {"pixel_id": "1", "capi_access_token": "x"}


class FakeStore:
    """The event table as the pipeline sees it: ``send_attempts`` as the upsert counts it.

    ``sent`` marks keys whose row was already sent to Meta (a redelivery's upsert sees it).
    """

    def __init__(self) -> None:
        self.rows: dict[EventKey, StoredEvent] = {}
        self.counted: dict[str, int] = {}
        self.outcomes: list[AttemptOutcome] = []
        self.upserted: list[list[dict[str, object]]] = []
        self.sent: set[EventKey] = set()

    def upsert(self, rows: Sequence[dict[str, object]]) -> dict[EventKey, StoredEvent]:
        self.upserted.append(list(rows))
        stored = {}
        for row in rows:
            key = (uuid.UUID(str(row["tenant_id"])), str(row["event_id"]))
            known = self.rows.get(key)
            attempts = int(str(row["send_attempts"])) + (known.send_attempts if known else 0)
            self.rows[key] = StoredEvent(
                known.id if known else uuid.uuid4(),
                key[0],
                key[1],
                key in self.sent,
                attempts,
                "sent" if key in self.sent else "pending",
            )
            self.counted[key[1]] = attempts
            stored[key] = self.rows[key]
        return stored

    def record(self, outcomes: Sequence[AttemptOutcome]) -> None:
        self.outcomes.extend(outcomes)


class NoContacts:
    """A contact linker that knows nobody."""

    def __init__(self) -> None:
        self.linked: list[list[str]] = []

    def link(
        self, events: Sequence[ConversionEvent], countries: Mapping[uuid.UUID, str | None]
    ) -> dict[EventKey, ContactHints]:
        self.linked.append([event.event_id for event in events])
        return {}


class ScriptedMeta:
    """Meta answering each event by ``answer(event)``: None accepts it, an error refuses it.

    ``calls`` keeps the event ids of every request, in order.
    """

    def __init__(self, answer: Callable[[ServerEvent], MetaAPIError | None] | None = None) -> None:
        self.answer = answer or (lambda _event: None)
        self.calls: list[list[str]] = []

    @property
    def requests(self) -> int:
        return len(self.calls)

    def send_events(self, events: Sequence[ServerEvent]) -> BatchOutcome:
        self.calls.append([str(event.event_id) for event in events])
        answers = [self.answer(event) for event in events]
        failed = {i: error for i, error in enumerate(answers) if error is not None}
        sent = [i for i, error in enumerate(answers) if error is None]
        result = SendResult(events_received=len(sent), fbtrace_id="trace" if sent else None)
        return BatchOutcome(total=len(events), sent=sent, failed=failed, result=result)

    def close(self) -> None:
        return None


class ThrottlingMeta(ScriptedMeta):
    """Meta answering every request with code 4 and a BUC wait of ``wait_minutes``."""

    def __init__(self, wait_minutes: float) -> None:
        error = MetaRateLimitedError(
            "(#4) Application request limit reached",
            code=4,
            status_code=400,
            retry_after_seconds=wait_minutes * 60,
            classification="rate_limited",
        )
        super().__init__(lambda _event: error)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def build_processor(
    meta: ScriptedMeta,
    store: FakeStore,
    clock: Clock,
    *,
    tenants: Mapping[uuid.UUID, TenantRecord] | None = None,
    contacts: NoContacts | None = None,
) -> BatchProcessor:
    """A processor on the fakes; every tenant exists with Meta credentials unless
    ``tenants`` lists the known ones."""

    def load(tenant_id: uuid.UUID) -> TenantRecord | None:
        if tenants is not None:
            return tenants.get(tenant_id)
        return TenantRecord(tenant_id, "t", "US", CREDENTIALS)

    def build(_credentials: Mapping[str, Any]) -> ScriptedMeta:
        return meta

    return BatchProcessor(
        codec=CODEC,
        topics=TOPICS,
        store=store,
        contacts=contacts or NoContacts(),
        tenants=TenantCache(load, build),
        sender=ConcurrentSender(1),
        options=PipelineOptions((60.0, 300.0, 1800.0, 7200.0), 60.0),
        clock=clock,
    )


def build_event(
    n: int, event_time: datetime, *, tenant_id: uuid.UUID = TENANT, name: str = "Lead"
) -> ConversionEvent:
    return ConversionEvent.create(
        tenant_id=tenant_id,
        source="api",
        source_event_id=f"lead-{n}",
        event_name=name,
        event_time=event_time,
        action_source="other",
        user={"emails": [f"a{n}@b.co"]},
    )


def incoming(value: bytes, offset: int, attempt: int = 1) -> Incoming:
    """A consumed record of topic ``t`` partition 0 carrying ``value``."""
    context = HopContext(attempt=attempt, due_ms=None, origin=Origin("t", 0, offset, 0))
    return Incoming("t", 0, offset, b"k", value, context)


def build_records(
    count: int, attempt: int, event_time: datetime, *, tenant_id: uuid.UUID = TENANT
) -> list[Incoming]:
    return [
        incoming(CODEC.encode(build_event(n, event_time, tenant_id=tenant_id)), n, attempt)
        for n in range(count)
    ]
