"""The queue API (``queue_capi_event``, ``send_queued_event``, ``process_unsent_events``) on Kafka.

``queue_capi_event`` publishes to the main topic (the worker does the rest);
``send_queued_event`` and ``process_unsent_events`` re-send stored rows *with their stored
hashed user data*, never rebuilt from an empty user (Meta would reject or mis-match it).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from capi_stream.errors import EventValidationError, PermanentError
from capi_stream.event import ConversionEvent
from meta_capi.client import MetaCAPIClient
from meta_capi.errors import MetaAPIError
from meta_capi.server_event import ServerEvent
from meta_capi.validation import is_expired
from storage.events import AttemptOutcome, record_outcomes, select_unsent
from storage.models import MAX_SEND_ATTEMPTS, EventStatus, MetaCapiEvent


class SupportsPublish(Protocol):
    """A publisher that returns once the broker acknowledged the event."""

    def publish(self, data: ConversionEvent) -> object: ...


def queue_capi_event(
    tenant_id: uuid.UUID | str, event: ConversionEvent, *, publisher: SupportsPublish
) -> str:
    """Publish ``event`` for ``tenant_id`` to the main topic; returns its ``event_id``.

    Raises:
        EventValidationError: the event belongs to another tenant.
        DependencyUnavailableError: the broker did not acknowledge it.
    """
    if uuid.UUID(str(tenant_id)) != event.tenant_id:
        raise EventValidationError("event.tenant_id differs from tenant_id", field="tenant_id")
    publisher.publish(event)
    return event.event_id


def server_event_from_row(row: MetaCapiEvent) -> ServerEvent:
    """Rebuild the exact event Meta gets from a stored row (hashed user data included)."""
    custom_data = dict(row.custom_data or {})
    if row.event_value is not None:
        custom_data["value"] = row.event_value
    if row.currency is not None:
        custom_data["currency"] = row.currency
    return ServerEvent(
        event_name=row.event_name,
        event_time=int(_aware(row.event_time).timestamp()),
        action_source=row.action_source,  # type: ignore[arg-type]  # stored from a Literal
        user_data=dict(row.user_data or {}),
        event_id=row.event_id,
        custom_data=custom_data,
        event_source_url=row.event_source_url,
    )


def send_queued_event(
    row_id: uuid.UUID, client: MetaCAPIClient, *, sessions: sessionmaker[Session]
) -> bool:
    """Send one stored row now; True when Meta accepted it. The outcome is recorded."""
    with sessions.begin() as session:
        row = session.get(MetaCapiEvent, row_id)
        if row is None or row.sent_to_meta:
            return row is not None
        outcomes = _send_rows(session, [row], client)
    return outcomes["sent"] == 1


def process_unsent_events(
    tenant_id: uuid.UUID,
    client: MetaCAPIClient,
    limit: int = 100,
    *,
    sessions: sessionmaker[Session],
) -> dict[str, int]:
    """Drain rows not yet sent with fewer than 5 attempts, oldest first: ``{"sent", "failed"}``."""
    with sessions.begin() as session:
        rows = list(session.scalars(select_unsent(tenant_id, limit)))
        return _send_rows(session, rows, client)


def _send_rows(
    session: Session, rows: Sequence[MetaCapiEvent], client: MetaCAPIClient
) -> dict[str, int]:
    now = datetime.now(UTC)
    outcomes: list[AttemptOutcome] = []
    sendable: list[MetaCapiEvent] = []
    for row in rows:
        if is_expired(_aware(row.event_time), now):
            outcomes.append(
                AttemptOutcome(row.id, 0, EventStatus.EXPIRED, error="older than 7 days")
            )
        else:
            sendable.append(row)
    sent = failed = 0
    if sendable:
        batch = client.send_events([server_event_from_row(row) for row in sendable])
        for index, row in enumerate(sendable):
            attempt = row.send_attempts + 1
            error = batch.failed.get(index)
            if error is None:
                sent += 1
                outcomes.append(
                    AttemptOutcome(
                        row.id,
                        attempt,
                        EventStatus.SENT,
                        fbtrace_id=batch.result.fbtrace_id,
                        response={"events_received": batch.result.events_received},
                    )
                )
            else:
                failed += 1
                outcomes.append(_failure(row.id, attempt, error))
    record_outcomes(session, outcomes)
    return {"sent": sent, "failed": failed}


def _failure(row_id: uuid.UUID, attempt: int, error: MetaAPIError) -> AttemptOutcome:
    final = isinstance(error, PermanentError) or attempt >= MAX_SEND_ATTEMPTS
    return AttemptOutcome(
        row_id,
        attempt,
        EventStatus.DEAD if final else EventStatus.RETRYING,
        fbtrace_id=error.fbtrace_id,
        error=f"{type(error).__name__}: {error}",
    )


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes for timezone-aware columns; they are stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


__all__ = ["process_unsent_events", "queue_capi_event", "send_queued_event"]
