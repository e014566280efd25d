"""The DLQ-age gauges' source: dead rows in SQLite and PostgreSQL, cached, None when down."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.database import build_engine, build_session_factory
from consumers.dead_letter_stats import DeadLetterStatsReader
from consumers.dlq_limit import DeadLetterLimit
from consumers.metrics import WorkerMetrics
from storage.events import upsert_events
from storage.models import EventStatus, MetaCapiEvent
from tests.ops.test_cli_status import row


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_counts_dead_rows_and_ages_the_oldest(session_factory: sessionmaker[Session]) -> None:
    tenant = uuid.uuid4()
    clock = Clock()
    reader = DeadLetterStatsReader(session_factory, cache_seconds=60, clock=clock)
    empty = reader.read()
    assert empty is not None and (empty.count, empty.oldest_age_seconds) == (0, 0.0)

    dead_since = datetime.now(UTC) - timedelta(hours=5)
    happened = datetime.now(UTC) - timedelta(days=2)
    rows = [
        row(tenant, "Purchase", EventStatus.DEAD, event_time=happened),
        row(tenant, "Lead", EventStatus.DEAD),
        row(tenant, "Lead", EventStatus.SENT, event_time=happened - timedelta(days=1)),
    ]
    with session_factory.begin() as session:
        upsert_events(session, rows)
        session.execute(
            update(MetaCapiEvent)
            .where(MetaCapiEvent.event_id == rows[0]["event_id"])
            .values(updated_at=dead_since)
        )
    assert reader.read() == empty  # cached for 60 s
    clock.now = 61.0
    stats = reader.read()
    assert stats is not None and stats.count == 2
    assert 5 * 3600 - 60 < stats.oldest_age_seconds < 5 * 3600 + 600
    assert 2 * 86400 - 60 < stats.oldest_event_age_seconds < 2 * 86400 + 600

    metrics = WorkerMetrics()
    metrics.watch(lambda: (False, "no partitions"), DeadLetterLimit(5, 60.0), reader.read)
    text = metrics.render().decode()
    assert "capi_worker_dead_letter_events 2.0" in text
    assert "capi_worker_ready 0.0" in text
    assert "capi_worker_dead_letter_limit 5.0" in text


def test_an_unreachable_database_reads_as_none_and_the_gauges_as_nan() -> None:
    engine = build_engine("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    reader = DeadLetterStatsReader(build_session_factory(engine))
    try:
        assert reader.read() is None
        metrics = WorkerMetrics()
        metrics.watch(lambda: (True, ""), DeadLetterLimit(5, 60.0), reader.read)
        assert "capi_worker_dead_letter_events NaN" in metrics.render().decode()
    finally:
        engine.dispose()
