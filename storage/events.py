"""Repository of ``meta_capi_events``: idempotent upserts and delivery outcomes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, cast

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Result,
    Select,
    Table,
    Update,
    bindparam,
    case,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from capi_stream.event import EventKey
from storage.ids import random_uuids
from storage.models import MAX_SEND_ATTEMPTS, EventStatus, MetaCapiEvent

_TABLE = cast(Table, MetaCapiEvent.__table__)
_TRACE_ID_MAX: int = _TABLE.c.meta_fbtrace_id.type.length  # type: ignore[attr-defined]

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
    """Insert rows, or refresh their content if (tenant_id, event_id) exists.

    Re-processing the same event is harmless: status and sent flags are kept. A row's
    ``send_attempts`` (0 or 1, default 0) is the send attempt this upsert counts, because
    the caller is about to send the event: it is added to the stored count of a row not yet
    sent (and stamps ``last_send_attempt_at``). Counting in the same statement, committed
    before the send, keeps ``send_attempts`` true when the process dies between the send
    and its outcome write, without one more write per batch (let alone per event).
    One short cached statement per batch, never one compiled afresh with a bind parameter per
    value (1,000 rows x 33 columns made that 2 s of CPU per batch): PostgreSQL receives the
    batch as one JSON parameter, other databases as an executemany. Rows must all have the
    same keys (``consumers.pipeline.prepare`` builds them so).
    """
    if not rows:
        return {}
    now = datetime.now(UTC)
    if session.get_bind().dialect.name == "postgresql":
        result = _upsert_recordset(session.connection(), rows, now)
    else:
        defaults = _column_defaults()
        ids = random_uuids()
        values = [
            {**defaults, "id": next(ids), "created_at": now, "updated_at": now, **row}
            for row in rows
        ]
        for value in values:
            value["last_send_attempt_at"] = now if value.get("send_attempts") else None
        result = _upsert_many(session.connection(), values)
    # One fetchall (iterating fetches row by row); a row is ``_RETURNING``: StoredEvent's fields.
    states = [StoredEvent(*row) for row in result.all()]
    return {(state.tenant_id, state.event_id): state for state in states}


_RETURNING = ("id", "tenant_id", "event_id", "sent_to_meta", "send_attempts", "status")


def _column_defaults() -> dict[str, Any]:
    """The model's Python-side defaults (and a new ``id``): executemany rows carry them."""
    defaults: dict[str, Any] = {}
    for column in _TABLE.columns:
        default: Any = column.default
        if default is not None and default.is_scalar:
            defaults[column.name] = default.arg
        elif default is not None and default.is_callable:
            defaults[column.name] = default.arg(None)  # wrapped by SQLAlchemy to take a context
    return defaults


# json_populate_recordset fills the keys a row lacks from this record: the model's defaults
# (the id is the server's ``gen_random_uuid()``, a version-4 UUID).
_DEFAULTS = {name: value for name, value in _column_defaults().items() if name != "id"}
_DEFAULTS_JSON = orjson.dumps(_DEFAULTS).decode()
# Set by the statement itself, per row, unless a row brings its own.
_STAMPED = {
    "id": "gen_random_uuid()",
    "created_at": "%(now)s::timestamptz",
    "updated_at": "%(now)s::timestamptz",
}


def _upsert_many(connection: Connection, values: list[dict[str, Any]]) -> Result[*tuple[Any, ...]]:
    """Portable: one executemany that SQLAlchemy pages into multi-row VALUES + RETURNING."""
    insert = sqlite.insert if connection.dialect.name == "sqlite" else postgresql.insert
    statement = insert(_TABLE)
    refreshed: dict[str, ColumnElement[Any]] = {
        name: statement.excluded[name] for name in _CONTENT_COLUMNS if name in values[0]
    }
    refreshed["updated_at"] = statement.excluded.updated_at
    counted = statement.excluded.send_attempts
    refreshed["send_attempts"] = case(
        (_TABLE.c.sent_to_meta, _TABLE.c.send_attempts), else_=_TABLE.c.send_attempts + counted
    )
    refreshed["last_send_attempt_at"] = case(
        (_TABLE.c.sent_to_meta | (counted == 0), _TABLE.c.last_send_attempt_at),
        else_=statement.excluded.last_send_attempt_at,
    )
    upsert = statement.on_conflict_do_update(
        index_elements=["tenant_id", "event_id"], set_=refreshed
    ).returning(
        _TABLE.c.id,
        _TABLE.c.tenant_id,
        _TABLE.c.event_id,
        _TABLE.c.sent_to_meta,
        _TABLE.c.send_attempts,
        _TABLE.c.status,
    )
    return connection.execute(upsert, values)


@lru_cache(maxsize=16)
def _recordset_sql(keys: tuple[str, ...]) -> str:
    """The statement for rows with these keys; every identifier is looked up in the table."""
    table = _TABLE.name
    columns = [_TABLE.c[name].name for name in keys]  # KeyError if not a column
    columns += [name for name in _DEFAULTS if name not in keys]
    selected = {name: f"v.{name}" for name in columns}
    selected |= {name: value for name, value in _STAMPED.items() if name not in keys}
    # The attempt this upsert counts stamps its time (see ``upsert_events``).
    selected["last_send_attempt_at"] = "CASE WHEN v.send_attempts > 0 THEN %(now)s::timestamptz END"
    names = ", ".join(selected)
    refreshed = [name for name in _CONTENT_COLUMNS if name in keys] + ["updated_at"]
    assignments = ", ".join(f"{name} = EXCLUDED.{name}" for name in refreshed)
    # The attempt this upsert counts (see ``upsert_events``); a sent row is left alone.
    assignments += (
        f", send_attempts = CASE WHEN {table}.sent_to_meta THEN {table}.send_attempts "
        f"ELSE {table}.send_attempts + EXCLUDED.send_attempts END"
        f", last_send_attempt_at = CASE WHEN {table}.sent_to_meta OR EXCLUDED.send_attempts = 0 "
        f"THEN {table}.last_send_attempt_at ELSE EXCLUDED.last_send_attempt_at END"
    )
    base = f"json_populate_record(NULL::{table}, %(defaults)s::json)"
    return (
        f"INSERT INTO {table} ({names}) SELECT {', '.join(selected.values())} "  # noqa: S608 - identifiers from the table, values bound
        f"FROM json_populate_recordset({base}, %(rows)s::json) AS v "
        f"ON CONFLICT (tenant_id, event_id) DO UPDATE SET {assignments} "
        f"RETURNING {', '.join(_RETURNING)}"
    )


def _json_scalar(value: object) -> object:
    # orjson writes UUIDs and datetimes itself; a numeric column parses the exact decimal text
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):  # a row that is not a dict
        return dict(value)
    raise TypeError(f"cannot send {type(value).__name__} to PostgreSQL as JSON")


def _upsert_recordset(
    connection: Connection, rows: Sequence[Mapping[str, Any]], now: datetime
) -> Result[*tuple[Any, ...]]:
    """PostgreSQL: the whole batch as ONE JSON parameter, expanded by the server.

    ``json_populate_recordset`` turns the array into rows of the table's own type, so the
    statement stays short and cached however many rows, the client does one C-speed
    ``orjson.dumps`` of the rows as they are (defaults, ids and times are the statement's)
    instead of binding tens of thousands of parameters, and the server plans once. JSON
    columns (``user_data``, ``custom_data``) travel as nested objects.
    """
    params = {
        "rows": orjson.dumps(rows, default=_json_scalar).decode(),
        "defaults": _DEFAULTS_JSON,
        "now": now,
    }
    return connection.exec_driver_sql(_recordset_sql(tuple(rows[0])), params)


def _storable(value: Any) -> Any:
    """Meta's text as the database can hold it: NUL dropped, lone surrogates replaced.

    Error messages, trace ids and response bodies come from Meta, not from our model; one
    odd character there must not fail the batch's outcome write (the worker would replay
    the batch forever, or crash on orjson's refusal of a surrogate).
    """
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "")
        return value if value.isascii() else value.encode("utf-8", "replace").decode()
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def _trace_id(value: str | None) -> str | None:
    """Meta's trace id, cut to its column."""
    return _storable(value[:_TRACE_ID_MAX]) if value is not None else None


def _response(outcome: AttemptOutcome) -> dict[str, Any] | None:
    return _storable(dict(outcome.response)) if outcome.response is not None else None


def _outcome_values(outcome: AttemptOutcome, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {
        "status": outcome.status,
        "updated_at": now,
        "send_error": _storable(outcome.error),
    }
    if outcome.attempt > 0:
        values["send_attempts"] = outcome.attempt  # never lowers the count: see _assignment
        values["last_send_attempt_at"] = now
    if outcome.response is not None:
        values["meta_response"] = _response(outcome)
    if outcome.fbtrace_id is not None:
        values["meta_fbtrace_id"] = _trace_id(outcome.fbtrace_id)
    if outcome.status == EventStatus.SENT:
        values.update(sent_to_meta=True, sent_at=now, send_error=None)
    return values


def _assignment(name: str) -> Any:
    """The SET value of a column; ``send_attempts`` only ever grows (the upsert counted)."""
    value = bindparam(f"v_{name}", type_=_TABLE.c[name].type)
    if name == "send_attempts":
        column = _TABLE.c.send_attempts
        return case((value > column, value), else_=column)
    return value


@lru_cache(maxsize=64)
def _update_statement(columns: tuple[str, ...]) -> Update:
    """``UPDATE ... SET <columns> WHERE id = :row_id AND NOT sent_to_meta`` for executemany."""
    return (
        update(_TABLE)
        .where(_TABLE.c.id == bindparam("row_id"), _TABLE.c.sent_to_meta.is_(False))
        .values({name: _assignment(name) for name in columns})
    )


# PostgreSQL: every outcome of a batch in one statement. Each SET term reproduces
# ``_outcome_values``: attempts and their time only for an attempt, response and trace id
# only when given, the sent columns only for a sent outcome.
_RECORD_SQL = f"""
UPDATE {_TABLE.name} AS t SET
    status = v.status,
    updated_at = %(now)s,
    send_error = v.send_error,
    send_attempts = CASE WHEN v.attempt > t.send_attempts THEN v.attempt ELSE t.send_attempts END,
    last_send_attempt_at = CASE WHEN v.attempt > 0 THEN %(now)s ELSE t.last_send_attempt_at END,
    meta_response = COALESCE(v.meta_response, t.meta_response),
    meta_fbtrace_id = COALESCE(v.fbtrace_id, t.meta_fbtrace_id),
    sent_to_meta = v.sent,
    sent_at = CASE WHEN v.sent THEN %(now)s ELSE t.sent_at END
FROM json_to_recordset(%(rows)s::json) AS v(
    id uuid, status text, send_error text, attempt integer, meta_response json,
    fbtrace_id text, sent boolean)
WHERE t.id = v.id AND t.sent_to_meta = false
"""  # noqa: S608 - the table's own name; values bound


def record_outcomes(session: Session, outcomes: Sequence[AttemptOutcome]) -> None:
    """Write each attempt's result; ``send_attempts`` becomes at least the attempt number.

    ``send_attempts`` never goes down: the worker counts each send in the upsert before it
    is made (``upsert_events``), and an outcome (whose ``attempt`` is the record's place in
    the retry tiers) must not undo a count a killed process made before it could record one.
    A row already sent is never downgraded by a late duplicate of an earlier attempt.
    PostgreSQL gets the whole batch as one ``UPDATE ... FROM json_to_recordset``; elsewhere
    outcomes that set the same columns (all the "sent" ones, typically) go as one
    executemany. Either way: a round trip per batch (or per shape), not one per row.
    """
    if not outcomes:
        return
    now = datetime.now(UTC)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        rows = [
            {
                "id": o.row_id,
                "status": o.status,
                "sent": o.status == EventStatus.SENT,
                "send_error": None if o.status == EventStatus.SENT else _storable(o.error),
                "attempt": o.attempt,
                "meta_response": _response(o),
                "fbtrace_id": _trace_id(o.fbtrace_id),
            }
            for o in outcomes
        ]
        payload = orjson.dumps(rows).decode()
        connection.exec_driver_sql(_RECORD_SQL, {"now": now, "rows": payload})
        return
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for outcome in outcomes:
        values = _outcome_values(outcome, now)
        params = {f"v_{name}": value for name, value in values.items()}
        params["row_id"] = outcome.row_id
        shapes.setdefault(tuple(sorted(values)), []).append(params)
    for columns, params_list in shapes.items():
        connection.execute(_update_statement(columns), params_list)


def select_unsent(tenant_id: uuid.UUID, limit: int = 100) -> Select[MetaCapiEvent]:
    """The rows ``process_unsent_events`` drains: unsent, under the attempt limit, oldest first."""
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
