"""Repository of ``meta_capi_events``: idempotent upserts and delivery outcomes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import MAX_SEND_ATTEMPTS, EventStatus, MetaCapiEvent

EventKey = tuple[uuid.UUID, str]

# Columns a re-processed event may refresh; delivery columns are never reset by an upsert.
_CONTENT_COLUMNS = (
    "contact_id",
    "event_name",
    "event_time",
    "action_source",
    "event_source_url",
    "source",
    "source_event_id",
    "user_email_hash",
    "user_phone_hash",
    "user_first_name_hash",
    "user_last_name_hash",
    "user_gender_hash",
    "user_date_of_birth_hash",
    "user_city_hash",
    "user_state_hash",
    "user_zip_hash",
    "user_country_hash",
    "user_external_id",
    "user_fbp",
    "user_fbc",
    "user_data",
    "ad_id",
    "event_value",
    "currency",
    "custom_data",
)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """Delivery state of a row, as it is after an upsert."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    event_id: str
    sent_to_meta: bool
    send_attempts: int
    status: str


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """The result of one send attempt of one row."""

    row_id: uuid.UUID
    attempt: int
    status: str
    fbtrace_id: str | None = None
    response: Mapping[str, Any] | None = None
    error: str | None = None


def upsert_events(
    session: Session, rows: Sequence[Mapping[str, Any]]
) -> dict[EventKey, StoredEvent]:
    """Insert rows, or refresh their content if (tenant_id, event_id) exists; one statement.

    Re-processing the same event is harmless: attempts, status and sent flags are kept.
    """
    if not rows:
        return {}
    now = datetime.now(UTC)
    values = [{"id": uuid.uuid4(), "created_at": now, "updated_at": now, **row} for row in rows]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(MetaCapiEvent).values(values)
    refreshed = {name: statement.excluded[name] for name in _CONTENT_COLUMNS if name in values[0]}
    refreshed["updated_at"] = statement.excluded.updated_at
    upsert = statement.on_conflict_do_update(
        index_elements=["tenant_id", "event_id"], set_=refreshed
    ).returning(
        MetaCapiEvent.id,
        MetaCapiEvent.tenant_id,
        MetaCapiEvent.event_id,
        MetaCapiEvent.sent_to_meta,
        MetaCapiEvent.send_attempts,
        MetaCapiEvent.status,
    )
    stored: dict[EventKey, StoredEvent] = {}
    for row in session.execute(upsert):
        state = StoredEvent(row.id, row.tenant_id, row.event_id, row.sent_to_meta,
                            row.send_attempts, row.status)  # fmt: skip
        stored[(state.tenant_id, state.event_id)] = state
    return stored


def record_outcomes(session: Session, outcomes: Sequence[AttemptOutcome]) -> None:
    """Write each attempt's result; ``send_attempts`` becomes the attempt number itself.

    A row already sent is never downgraded by a late duplicate of an earlier attempt.
    """
    now = datetime.now(UTC)
    for outcome in outcomes:
        sent = outcome.status == EventStatus.SENT
        values: dict[str, Any] = {
            "status": outcome.status,
            "updated_at": now,
            "send_error": outcome.error,
        }
        if outcome.attempt > 0:
            values["send_attempts"] = outcome.attempt
            values["last_send_attempt_at"] = now
        if outcome.response is not None:
            values["meta_response"] = dict(outcome.response)
        if outcome.fbtrace_id is not None:
            values["meta_fbtrace_id"] = outcome.fbtrace_id
        if sent:
            values.update(sent_to_meta=True, sent_at=now, send_error=None)
        session.execute(
            update(MetaCapiEvent)
            .where(MetaCapiEvent.id == outcome.row_id, MetaCapiEvent.sent_to_meta.is_(False))
            .values(**values)
        )


def select_unsent(tenant_id: uuid.UUID, limit: int = 100) -> Select[MetaCapiEvent]:
    """The retry drain of the directive: unsent, under the attempt limit, oldest first."""
    return (
        select(MetaCapiEvent)
        .where(
            MetaCapiEvent.tenant_id == tenant_id,
            MetaCapiEvent.sent_to_meta.is_(False),
            MetaCapiEvent.send_attempts < MAX_SEND_ATTEMPTS,
        )
        .order_by(MetaCapiEvent.created_at)
        .limit(limit)
    )
