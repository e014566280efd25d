"""The pipeline under Meta throttling, with small fakes at its seams (no broker, no database):
a throttled send spends no attempt, a blocked tenant is not sent to and not counted, the
7-day window still ends a deferred event."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from capi_stream.avro.codec import build_codec
from capi_stream.event import ConversionEvent, EventKey
from capi_stream.kafka.topics import TopicNames
from consumers import headers as h
from consumers.headers import HopContext, Origin, header_map
from consumers.pipeline.enrich import ContactHints
from consumers.pipeline.processor import BatchProcessor, BatchReport, Incoming, PipelineOptions
from consumers.pipeline.sender import ConcurrentSender
from consumers.pipeline.store import TenantRecord
from consumers.pipeline.tenants import TenantCache
from meta_capi.client import BatchOutcome, SendResult
from meta_capi.errors import MetaAPIError, MetaRateLimitedError
from meta_capi.server_event import ServerEvent
from storage.events import AttemptOutcome, StoredEvent
from storage.models import EventStatus

CODEC = build_codec()
TOPICS = TopicNames(main="t")
TENANT = uuid.UUID("00000000-0000-0000-0000-0000000000bb")
START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class FakeStore:
    """The event table as the pipeline sees it: ``send_attempts`` as the upsert counts it."""

    def __init__(self) -> None:
        self.rows: dict[EventKey, StoredEvent] = {}
        self.counted: dict[str, int] = {}
        self.outcomes: list[AttemptOutcome] = []

    def upsert(self, rows: Sequence[dict[str, object]]) -> dict[EventKey, StoredEvent]:
        stored = {}
        for row in rows:
            key = (uuid.UUID(str(row["tenant_id"])), str(row["event_id"]))
            known = self.rows.get(key)
            attempts = int(str(row["send_attempts"])) + (known.send_attempts if known else 0)
            self.rows[key] = StoredEvent(
                known.id if known else uuid.uuid4(), key[0], key[1], False, attempts, "pending"
            )
            self.counted[key[1]] = attempts
            stored[key] = self.rows[key]
        return stored

    def record(self, outcomes: Sequence[AttemptOutcome]) -> None:
        self.outcomes.extend(outcomes)


class NoContacts:
    def link(
        self, events: Sequence[ConversionEvent], countries: Mapping[uuid.UUID, str | None]
    ) -> dict[EventKey, ContactHints]:
        return {}


class ThrottlingMeta:
    """Meta answering every request with code 4 and a BUC wait of ``wait_minutes``."""

    def __init__(self, wait_minutes: float) -> None:
        self.wait_minutes = wait_minutes
        self.requests = 0

    def send_events(self, events: Sequence[ServerEvent]) -> BatchOutcome:
        self.requests += 1
        error = MetaRateLimitedError(
            "(#4) Application request limit reached", code=4, status_code=400,
            retry_after_seconds=self.wait_minutes * 60, classification="rate_limited",
        )  # fmt: skip
        failed: dict[int, MetaAPIError] = dict.fromkeys(range(len(events)), error)
        return BatchOutcome(total=len(events), sent=[], failed=failed, result=SendResult())

    def close(self) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def _processor(meta: ThrottlingMeta, store: FakeStore, clock: Clock) -> BatchProcessor:
    def load(tenant_id: uuid.UUID) -> TenantRecord:
        return TenantRecord(tenant_id, "t", "US", {"pixel_id": "1", "capi_access_token": "x"})

    def build(_credentials: Mapping[str, Any]) -> ThrottlingMeta:
        return meta

    return BatchProcessor(
        codec=CODEC, topics=TOPICS, store=store, contacts=NoContacts(),
        tenants=TenantCache(load, build), sender=ConcurrentSender(1),
        options=PipelineOptions((60.0, 300.0, 1800.0, 7200.0), 60.0), clock=clock,
    )  # fmt: skip


def _records(count: int, attempt: int, event_time: datetime) -> list[Incoming]:
    records = []
    for n in range(count):
        event = ConversionEvent.create(
            tenant_id=TENANT, source="api", source_event_id=f"lead-{n}", event_name="Lead",
            event_time=event_time, action_source="other", user={"emails": [f"a{n}@b.co"]},
        )  # fmt: skip
        context = HopContext(attempt=attempt, due_ms=None, origin=Origin("t", 0, n, 0))
        records.append(Incoming("t", 0, n, b"k", CODEC.encode(event), context))
    return records


def _tiers(report: BatchReport) -> list[tuple[str, str]]:
    return [(f.topic, header_map(f.headers)[h.ATTEMPT]) for f in report.forwards]


def test_a_throttled_send_spends_no_attempt_and_blocks_the_tenant_as_long_as_meta_asks() -> None:
    meta, store, clock = ThrottlingMeta(wait_minutes=2), FakeStore(), Clock()
    processor = _processor(meta, store, clock)
    event_time = START - timedelta(hours=1)

    # The fifth attempt (the last of the budget) is throttled: deferred, never dead.
    report = processor.process(_records(3, attempt=5, event_time=event_time))
    assert meta.requests == 1
    assert (report.deferred, report.dead_lettered, report.failed_by_class) == (3, 0, {})
    assert report.throttled_by_tenant == {str(TENANT): 1}
    # 2 min wait: the first tier whose delay covers it (5 min), the attempt unchanged.
    assert _tiers(report) == [("t.retry.2", "5")] * 3
    assert all(header_map(f.headers)[h.DUE_MS] == str(int(START.timestamp() * 1000) + 120_000)
               for f in report.forwards)  # fmt: skip
    assert report.paused_tenants == {str(TENANT): int(START.timestamp() * 1000) + 120_000}
    assert set(store.counted.values()) == {1}  # the throttled send reached Meta: counted
    assert {(o.status, o.attempt) for o in store.outcomes} == {(EventStatus.RETRYING, 0)}

    # While blocked: no call to Meta, nothing counted, held back on a tier until the end.
    clock.now = START + timedelta(seconds=30)
    report = processor.process(_records(2, attempt=1, event_time=event_time))
    assert meta.requests == 1
    assert report.deferred_by_tenant == {str(TENANT): 2}
    assert _tiers(report) == [("t.retry.2", "1")] * 2  # 90 s left: more than the 1-min tier
    assert set(store.counted.values()) == {1}

    # Past Meta's 7-day window a deferred event is recorded expired: never retried forever.
    clock.now = START + timedelta(days=7)
    report = processor.process(_records(3, attempt=5, event_time=event_time))
    assert (report.expired, report.deferred, report.forwards) == (3, 0, [])
    assert meta.requests == 1
    processor.sender.close()
