"""The pipeline under Meta throttling, with small fakes at its seams (no broker, no database):
a throttled send spends no attempt, a blocked tenant is not sent to and not counted, the
7-day window still ends a deferred event."""

from __future__ import annotations

from datetime import datetime, timedelta

from consumers import headers as h
from consumers.headers import header_map
from consumers.pipeline.processor import BatchProcessor, BatchReport, Incoming
from storage.models import EventStatus
from tests.support.fakes import (
    START,
    TENANT,
    Clock,
    FakeStore,
    ThrottlingMeta,
    build_processor,
    build_records,
)


def _processor(meta: ThrottlingMeta, store: FakeStore, clock: Clock) -> BatchProcessor:
    return build_processor(meta, store, clock)


def _records(count: int, attempt: int, event_time: datetime) -> list[Incoming]:
    return build_records(count, attempt, event_time)


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
    assert all(
        header_map(f.headers)[h.DUE_MS] == str(int(START.timestamp() * 1000) + 120_000)
        for f in report.forwards
    )
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
