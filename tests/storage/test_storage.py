"""Migrations build the same schema on SQLite and PostgreSQL; the event upsert is idempotent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from storage.events import AttemptOutcome, record_outcomes, select_unsent, upsert_events
from storage.models import Base, EventStatus, MetaCapiEvent
from storage.tenants import get_credentials, upsert_integration

EXPECTED_TABLES = {
    "tenants",
    "tenant_integrations",
    "contacts",
    "meta_capi_events",
    "webhook_receipts",
    "redrive_audit",
}


def test_migrations_build_every_model_table_and_column(db_engine: Engine) -> None:
    inspector = inspect(db_engine)
    assert set(inspector.get_table_names()) >= EXPECTED_TABLES
    for table in Base.metadata.sorted_tables:
        reflected = {column["name"]: column for column in inspector.get_columns(table.name)}
        assert set(reflected) == set(table.columns.keys()), table.name
        for column in table.columns:
            # A value the model accepts must fit the migrated column on both backends.
            length = getattr(column.type, "length", None)
            if length is not None:
                assert getattr(reflected[column.name]["type"], "length", None) == length, (
                    f"{table.name}.{column.name}"
                )
    uniques = {
        tuple(u["column_names"]) for u in inspector.get_unique_constraints("meta_capi_events")
    }
    assert ("tenant_id", "event_id") in uniques
    assert "ix_meta_capi_events_unsent" in {
        i["name"] for i in inspector.get_indexes("meta_capi_events")
    }


def _row(tenant_id: uuid.UUID, event_id: str, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "tenant_id": tenant_id,
        "event_id": event_id,
        "event_name": "Purchase",
        "event_time": datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
        "action_source": "other",
        "source": "stripe",
        "source_event_id": "pi_123",
        "user_email_hash": "a" * 64,
        "user_data": {"em": ["a" * 64]},
        "event_value": Decimal("12.3400"),
        "currency": "EUR",
        "custom_data": {"value": 12.34, "currency": "EUR"},
        "status": EventStatus.PENDING,
    }
    row.update(overrides)
    return row


@pytest.mark.parametrize("status", [EventStatus.SENT, EventStatus.RETRYING])
def test_an_overlong_meta_trace_id_is_cut_to_its_column(
    session_factory: sessionmaker[Session], status: str
) -> None:
    tenant = uuid.uuid4()
    with session_factory.begin() as session:
        row_id = upsert_events(session, [_row(tenant, "e1")])[(tenant, "e1")].id
    with session_factory.begin() as session:
        outcome = AttemptOutcome(row_id, 1, status, error="x", fbtrace_id="T" * 300)
        record_outcomes(session, [outcome])
    with session_factory() as session:
        stored = session.get(MetaCapiEvent, row_id)
        assert stored is not None
        assert stored.meta_fbtrace_id == "T" * 128


def test_odd_characters_in_meta_answers_are_stored_not_refused(
    session_factory: sessionmaker[Session],
) -> None:
    # Meta's text is not ours: a NUL (PostgreSQL text refuses it) or a lone surrogate (no
    # UTF-8 form) must not fail the outcome write, which would stall the batch for good.
    tenant = uuid.uuid4()
    with session_factory.begin() as session:
        row_id = upsert_events(session, [_row(tenant, "e1")])[(tenant, "e1")].id
    odd = "bad\x00 \ud800 news"
    outcome = AttemptOutcome(
        row_id,
        1,
        EventStatus.RETRYING,
        error=odd,
        fbtrace_id="T\x00\udfff",
        response={"error": {"message": odd, odd: [odd]}},
    )
    with session_factory.begin() as session:
        record_outcomes(session, [outcome])
    with session_factory() as session:
        stored = session.get(MetaCapiEvent, row_id)
        assert stored is not None
        assert stored.send_error == "bad ? news"
        assert stored.meta_fbtrace_id == "T?"
        assert stored.meta_response == {
            "error": {"message": "bad ? news", "bad ? news": ["bad ? news"]}
        }
        assert stored.send_attempts == 1


def test_upsert_is_idempotent_and_keeps_delivery_state(
    session_factory: sessionmaker[Session],
) -> None:
    tenant = uuid.uuid4()
    with session_factory.begin() as session:
        first = upsert_events(session, [_row(tenant, "e1"), _row(tenant, "e2")])
    row_id = first[(tenant, "e1")].id
    with session_factory.begin() as session:
        record_outcomes(session, [AttemptOutcome(row_id, 1, EventStatus.SENT, fbtrace_id="F1")])
    with session_factory.begin() as session:
        again = upsert_events(session, [_row(tenant, "e1", currency="USD")])

    assert again[(tenant, "e1")].id == row_id
    assert again[(tenant, "e1")].sent_to_meta is True
    assert again[(tenant, "e1")].send_attempts == 1
    with session_factory() as session:
        rows = session.scalars(select(MetaCapiEvent).where(MetaCapiEvent.tenant_id == tenant)).all()
        assert len(rows) == 2
        stored = next(r for r in rows if r.event_id == "e1")
        assert stored.currency == "USD"
        assert stored.status == EventStatus.SENT
        assert stored.meta_fbtrace_id == "F1"
        assert stored.event_value == Decimal("12.34")
        assert stored.event_time == datetime(2026, 11, 28, 12, 0, tzinfo=UTC) or (
            stored.event_time.replace(tzinfo=UTC) == datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
        )
        unsent = session.scalars(select_unsent(tenant)).all()
        assert [r.event_id for r in unsent] == ["e2"]


def test_a_late_failure_never_downgrades_a_sent_row(session_factory: sessionmaker[Session]) -> None:
    tenant = uuid.uuid4()
    with session_factory.begin() as session:
        row_id = upsert_events(session, [_row(tenant, "e1")])[(tenant, "e1")].id
        record_outcomes(session, [AttemptOutcome(row_id, 2, EventStatus.SENT)])
        record_outcomes(session, [AttemptOutcome(row_id, 1, EventStatus.RETRYING, error="late")])
    with session_factory() as session:
        stored = session.get_one(MetaCapiEvent, row_id)
        assert (stored.status, stored.send_attempts, stored.send_error) == ("sent", 2, None)


def test_integration_credentials_merge(session_factory: sessionmaker[Session]) -> None:
    tenant = uuid.uuid4()
    with session_factory.begin() as session:
        upsert_integration(session, tenant, "meta", {"pixel_id": "1", "capi_access_token": "t"})
        integration = upsert_integration(session, tenant, "meta", {"test_event_code": "TEST1"})
        assert "capi_access_token" not in repr(integration)
    with session_factory() as session:
        assert get_credentials(session, tenant, "meta") == {
            "pixel_id": "1",
            "capi_access_token": "t",
            "test_event_code": "TEST1",
        }
        assert get_credentials(session, tenant, "stripe") is None


def test_upsert_applies_the_model_defaults_to_minimal_rows(
    session_factory: sessionmaker[Session],
) -> None:
    tenant = uuid.uuid4()
    minimal = {
        key: value
        for key, value in _row(tenant, "m1").items()
        if key
        in {
            "tenant_id",
            "event_id",
            "event_name",
            "event_time",
            "action_source",
            "source",
            "source_event_id",
        }
    }
    with session_factory.begin() as session:
        state = upsert_events(session, [minimal])[(tenant, "m1")]
    assert (state.status, state.send_attempts, state.sent_to_meta) == ("pending", 0, False)
    with session_factory() as session:
        stored = session.get_one(MetaCapiEvent, state.id)
        assert (stored.custom_data, stored.user_data) == ({}, {})


def test_new_rows_get_v4_ids_the_batch_time_and_an_attempt_stamp_only_when_sent(
    session_factory: sessionmaker[Session],
) -> None:
    """What the upsert fills in itself is the same on every database (PostgreSQL's statement
    makes ids, times and defaults server-side; elsewhere the rows carry them)."""
    tenant = uuid.uuid4()
    rows = [_row(tenant, "sends", send_attempts=1), _row(tenant, "held", send_attempts=0)]
    with session_factory.begin() as session:
        first = upsert_events(session, rows)
    with session_factory() as session:
        sends, held = (
            session.get_one(MetaCapiEvent, first[(tenant, e)].id) for e in ("sends", "held")
        )
        assert sends.id != held.id and sends.id.version == held.id.version == 4
        assert sends.created_at == sends.updated_at == held.created_at == held.updated_at
        assert sends.last_send_attempt_at == sends.created_at
        assert held.last_send_attempt_at is None
        assert (held.status, held.sent_to_meta, held.send_attempts) == ("pending", False, 0)
        created = sends.created_at
    with session_factory.begin() as session:
        again = upsert_events(session, [_row(tenant, "sends", send_attempts=1, currency="USD")])
    assert again[(tenant, "sends")].id == first[(tenant, "sends")].id
    with session_factory() as session:
        sends = session.get_one(MetaCapiEvent, first[(tenant, "sends")].id)
        assert (sends.created_at, sends.currency, sends.send_attempts) == (created, "USD", 2)
        assert sends.updated_at >= created
