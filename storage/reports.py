"""Reports over the events table: delivery counts, last errors, match quality, dead letters.

Read-only aggregate queries for ``capi status`` (``ops.status``), the pixel readiness section
(``ops.pixel_status``) and the worker's dead-letter gauges (``consumers.dead_letter_stats``).
Each returns plain values or frozen dataclasses; callers never build SQL.

The last error of a (tenant, event name, status) group, for the ``retrying`` and ``dead``
statuses, is ``send_error`` of its most recently attempted row: why events are retrying or
dead, without reading the table.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from storage.models import EventStatus, MetaCapiEvent

__all__ = [
    "MATCH_KEYS",
    "MATCH_KEY_LABELS",
    "DeadLetterSummary",
    "EventCounts",
    "LastError",
    "MatchQuality",
    "SentPixelRow",
    "iter_sent_pixel_rows",
    "query_event_counts",
    "query_last_errors",
    "query_match_quality",
    "summarize_dead_letters",
]


@dataclass(frozen=True, slots=True)
class EventCounts:
    """Delivery state of one tenant's events of one name."""

    tenant_id: str
    event_name: str
    received: int
    pending: int
    sent: int
    retrying: int
    dead_lettered: int
    expired: int
    oldest_unsent: datetime | None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["oldest_unsent"] = self.oldest_unsent.isoformat() if self.oldest_unsent else None
        return data


MATCH_KEYS = ("em", "ph", "fbc", "fbp", "external_id", "ip_ua")
# Column headers for people: Meta's field names say little to an analyst.
MATCH_KEY_LABELS = {
    "em": "email (em)",
    "ph": "phone (ph)",
    "fbc": "click id (fbc)",
    "fbp": "browser id (fbp)",
    "external_id": "external id",
    "ip_ua": "IP + user agent",
}


@dataclass(frozen=True, slots=True)
class MatchQuality:
    """How many of a tenant's events carry each matching key (``ip_ua``: both IP and UA)."""

    tenant_id: str
    total: int
    carrying: dict[str, int]

    def share(self, key: str) -> float:
        return self.carrying[key] / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        shares = {key: round(self.share(key), 4) for key in MATCH_KEYS}
        return {
            "tenant_id": self.tenant_id,
            "total": self.total,
            "carrying": self.carrying,
            "share": shares,
        }


@dataclass(frozen=True, slots=True)
class LastError:
    """The newest failure of a (tenant, event name, status) group: why its events retry
    (status ``retrying``) or died (``dead``)."""

    tenant_id: str
    event_name: str
    status: str
    error: str
    at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat() if self.at else None
        return data


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _status(value: str) -> ColumnElement[int]:
    return _count(MetaCapiEvent.status == value)


def query_event_counts(session: Session, tenant_id: uuid.UUID | None = None) -> list[EventCounts]:
    """Counts per (tenant, event name) and the oldest event not yet sent nor given up."""
    unsent = and_(
        MetaCapiEvent.sent_to_meta.is_(False),
        MetaCapiEvent.status.in_((EventStatus.PENDING, EventStatus.RETRYING)),
    )
    query = select(
        MetaCapiEvent.tenant_id,
        MetaCapiEvent.event_name,
        func.count(),
        _status(EventStatus.PENDING),
        _status(EventStatus.SENT),
        _status(EventStatus.RETRYING),
        _status(EventStatus.DEAD),
        _status(EventStatus.EXPIRED),
        func.min(case((unsent, MetaCapiEvent.created_at), else_=None)),
    ).group_by(MetaCapiEvent.tenant_id, MetaCapiEvent.event_name)
    if tenant_id is not None:
        query = query.where(MetaCapiEvent.tenant_id == tenant_id)
    rows = session.execute(query.order_by(MetaCapiEvent.tenant_id, MetaCapiEvent.event_name))
    return [
        EventCounts(
            str(r[0]),
            r[1],
            r[2],
            int(r[3] or 0),
            int(r[4] or 0),
            int(r[5] or 0),
            int(r[6] or 0),
            int(r[7] or 0),
            r[8],
        )
        for r in rows
    ]


def query_last_errors(session: Session, tenant_id: uuid.UUID | None = None) -> list[LastError]:
    """Per (tenant, event name, status), ``send_error`` of the newest retrying or dead row."""
    failed = and_(
        MetaCapiEvent.status.in_((EventStatus.RETRYING, EventStatus.DEAD)),
        MetaCapiEvent.send_error.is_not(None),
    )
    if tenant_id is not None:
        failed = and_(failed, MetaCapiEvent.tenant_id == tenant_id)
    when = func.coalesce(MetaCapiEvent.last_send_attempt_at, MetaCapiEvent.updated_at)
    newest = (
        func.row_number()
        .over(
            partition_by=(MetaCapiEvent.tenant_id, MetaCapiEvent.event_name, MetaCapiEvent.status),
            order_by=(when.desc(), MetaCapiEvent.id),
        )
        .label("newest")
    )
    ranked = (
        select(
            MetaCapiEvent.tenant_id,
            MetaCapiEvent.event_name,
            MetaCapiEvent.status,
            MetaCapiEvent.send_error,
            when.label("at"),
            newest,
        )
        .where(failed)
        .subquery()
    )
    rows = session.execute(
        select(
            ranked.c.tenant_id,
            ranked.c.event_name,
            ranked.c.status,
            ranked.c.send_error,
            ranked.c.at,
        )
        .where(ranked.c.newest == 1)
        .order_by(ranked.c.tenant_id, ranked.c.event_name, ranked.c.status.desc())
    )
    return [LastError(str(r[0]), r[1], r[2], r[3], r[4]) for r in rows]


def _present(column: Any) -> ColumnElement[bool]:
    present: ColumnElement[bool] = column.is_not(None)
    return present


def _in_user_data(key: str) -> ColumnElement[bool]:
    present: ColumnElement[bool] = MetaCapiEvent.user_data[key].as_string().is_not(None)
    return present


def query_match_quality(session: Session, tenant_id: uuid.UUID | None = None) -> list[MatchQuality]:
    """Per tenant, how many events carry em / ph / fbc / fbp / external_id / IP + UA.

    A key counts when its column is set or it is in the ``user_data`` JSON sent to Meta.
    """
    conditions = {
        "em": or_(_present(MetaCapiEvent.user_email_hash), _in_user_data("em")),
        "ph": or_(_present(MetaCapiEvent.user_phone_hash), _in_user_data("ph")),
        "fbc": or_(_present(MetaCapiEvent.user_fbc), _in_user_data("fbc")),
        "fbp": or_(_present(MetaCapiEvent.user_fbp), _in_user_data("fbp")),
        "external_id": or_(_present(MetaCapiEvent.user_external_id), _in_user_data("external_id")),
        "ip_ua": and_(_in_user_data("client_ip_address"), _in_user_data("client_user_agent")),
    }
    query = select(
        MetaCapiEvent.tenant_id, func.count(), *(_count(c) for c in conditions.values())
    ).group_by(MetaCapiEvent.tenant_id)
    if tenant_id is not None:
        query = query.where(MetaCapiEvent.tenant_id == tenant_id)
    result = []
    for row in session.execute(query.order_by(MetaCapiEvent.tenant_id)):
        carrying = {key: int(row[i + 2] or 0) for i, key in enumerate(conditions)}
        result.append(MatchQuality(str(row[0]), int(row[1]), carrying))
    return result


@dataclass(frozen=True, slots=True)
class DeadLetterSummary:
    """How many rows are ``dead``, the oldest ``updated_at`` (when it was dead-lettered) and
    the oldest ``event_time`` among them (None when there is none)."""

    count: int
    oldest_dead_lettered_at: datetime | None
    oldest_event_time: datetime | None


def summarize_dead_letters(session: Session) -> DeadLetterSummary:
    """One aggregate over the ``dead`` rows."""
    statement = select(
        func.count(), func.min(MetaCapiEvent.updated_at), func.min(MetaCapiEvent.event_time)
    ).where(MetaCapiEvent.status == EventStatus.DEAD)
    count, oldest_update, oldest_event = session.execute(statement).one()
    return DeadLetterSummary(int(count), oldest_update, oldest_event)


@dataclass(frozen=True, slots=True)
class SentPixelRow:
    """What the pixel readiness report needs of one event sent to Meta."""

    tenant_id: uuid.UUID
    event_name: str
    source: str
    source_event_id: str
    event_id: str
    carries_fbp: bool
    carries_external_id: bool


def _carries(column: ColumnElement[Any] | Any, key: str) -> ColumnElement[bool]:
    in_json: ColumnElement[bool] = MetaCapiEvent.user_data[key].as_string().is_not(None)
    present: ColumnElement[bool] = or_(column.is_not(None), in_json)
    return present


def iter_sent_pixel_rows(
    session: Session, since: datetime, tenant_id: uuid.UUID | None = None
) -> Iterator[SentPixelRow]:
    """The events sent to Meta with an event time from ``since`` on, streamed 1000 at a time.

    ``fbp`` / ``external_id`` count when the column is set or the key is in ``user_data``.
    """
    query = select(
        MetaCapiEvent.tenant_id,
        MetaCapiEvent.event_name,
        MetaCapiEvent.source,
        MetaCapiEvent.source_event_id,
        MetaCapiEvent.event_id,
        _carries(MetaCapiEvent.user_fbp, "fbp"),
        _carries(MetaCapiEvent.user_external_id, "external_id"),
    ).where(MetaCapiEvent.sent_to_meta.is_(True), MetaCapiEvent.event_time >= since)
    if tenant_id is not None:
        query = query.where(MetaCapiEvent.tenant_id == tenant_id)
    for row in session.execute(query.execution_options(yield_per=1000)):
        yield SentPixelRow(row[0], row[1], row[2], row[3], row[4], bool(row[5]), bool(row[6]))
