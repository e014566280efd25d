"""``send_attempts`` tells the truth: a send is counted (by the upsert) before it is made,
and never uncounted by an outcome."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from storage.events import AttemptOutcome, record_outcomes, upsert_events
from storage.models import EventStatus, MetaCapiEvent


def _row(tenant_id: uuid.UUID, event_id: str, sends: bool = True) -> dict[str, Any]:
    return {
        "send_attempts": int(sends),  # the worker is about to send it (or not)
        "tenant_id": tenant_id,
        "event_id": event_id,
        "event_name": "Lead",
        "event_time": datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
        "action_source": "other",
        "source": "api",
        "source_event_id": event_id,
        "user_data": {"em": ["a" * 64]},
    }


def _attempts(sessions: sessionmaker[Session], row_id: uuid.UUID) -> tuple[int, str, bool]:
    with sessions() as session:
        row = session.get_one(MetaCapiEvent, row_id)
        assert row.last_send_attempt_at is not None or row.send_attempts == 0
        return row.send_attempts, row.status, row.sent_to_meta


def test_a_mark_whose_outcome_was_never_written_still_counts(
    session_factory: sessionmaker[Session],
) -> None:
    tenant = uuid.uuid4()
    rows = [_row(tenant, f"e{n}") for n in range(3)]
    with session_factory.begin() as session:  # first delivery: counted, sent, process died
        stored = upsert_events(session, rows)
    ids = {key[1]: state.id for key, state in stored.items()}
    assert {_attempts(session_factory, i) for i in ids.values()} == {(1, "pending", False)}
    with session_factory.begin() as session:  # the replay counts again, sends, records
        again = upsert_events(session, rows)
    assert {state.send_attempts for state in again.values()} == {2}
    with session_factory.begin() as session:
        record_outcomes(
            session,
            [
                AttemptOutcome(ids["e0"], 1, EventStatus.SENT, fbtrace_id="F"),
                AttemptOutcome(ids["e1"], 1, EventStatus.RETRYING, error="5xx"),
                AttemptOutcome(ids["e2"], 0, EventStatus.RETRYING, error="throttled"),
            ],
        )
    # The outcome's attempt (1: the record's place in the tiers) never lowers the count.
    assert _attempts(session_factory, ids["e0"]) == (2, EventStatus.SENT, True)
    assert _attempts(session_factory, ids["e1"]) == (2, EventStatus.RETRYING, False)
    assert _attempts(session_factory, ids["e2"]) == (2, EventStatus.RETRYING, False)


def test_only_rows_about_to_be_sent_are_counted_and_outcomes_can_raise_the_count(
    session_factory: sessionmaker[Session],
) -> None:
    tenant = uuid.uuid4()
    with session_factory.begin() as session:
        stored = upsert_events(
            session,
            [
                _row(tenant, "sent"),
                _row(tenant, "queue", sends=False),
                _row(tenant, "held", sends=False),
            ],
        )
    sent, queued = stored[(tenant, "sent")].id, stored[(tenant, "queue")].id
    held = stored[(tenant, "held")].id
    with session_factory.begin() as session:
        record_outcomes(session, [AttemptOutcome(sent, 1, EventStatus.SENT)])
    with session_factory.begin() as session:  # a late duplicate of a sent event: not counted
        upsert_events(session, [_row(tenant, "sent"), _row(tenant, "held", sends=False)])
    with session_factory.begin() as session:
        # The directive's queue functions count without the upsert: attempt = stored + 1.
        record_outcomes(session, [AttemptOutcome(queued, 3, EventStatus.RETRYING, error="x")])
    assert _attempts(session_factory, sent) == (1, EventStatus.SENT, True)
    assert _attempts(session_factory, queued) == (3, EventStatus.RETRYING, False)
    assert _attempts(session_factory, held) == (0, EventStatus.PENDING, False)
