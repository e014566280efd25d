"""Small reads of the events table for the tools around the pipeline.

The replay dry run asks which events were already sent, the pixel endpoint which contact a
stored purchase belongs to, ``capi dev`` which status each demo event reached.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from capi_stream.event import EventKey
from storage.models import MetaCapiEvent

__all__ = ["StoredContact", "find_event_contact", "find_sent_keys", "read_event_statuses"]


def find_sent_keys(
    session: Session, tenant_id: uuid.UUID, event_ids: Sequence[str]
) -> set[EventKey]:
    """The ``(tenant_id, event_id)`` among ``event_ids`` whose row was sent to Meta."""
    rows = session.execute(
        select(MetaCapiEvent.tenant_id, MetaCapiEvent.event_id).where(
            MetaCapiEvent.tenant_id == tenant_id,
            MetaCapiEvent.event_id.in_(event_ids),
            MetaCapiEvent.sent_to_meta.is_(True),
        )
    )
    return {(row[0], row[1]) for row in rows}


@dataclass(frozen=True, slots=True)
class StoredContact:
    """Whether the event's row exists, and its contact (None when not linked)."""

    stored: bool
    contact_id: uuid.UUID | None


def find_event_contact(session: Session, tenant_id: uuid.UUID, event_id: str) -> StoredContact:
    """The contact of the tenant's event ``event_id``."""
    row = session.execute(
        select(MetaCapiEvent.contact_id).where(
            MetaCapiEvent.tenant_id == tenant_id, MetaCapiEvent.event_id == event_id
        )
    ).first()
    return StoredContact(row is not None, row.contact_id if row is not None else None)


def read_event_statuses(session: Session, event_ids: Sequence[str]) -> dict[str, str]:
    """``event_id`` -> status, for the rows that exist."""
    rows = session.execute(
        select(MetaCapiEvent.event_id, MetaCapiEvent.status).where(
            MetaCapiEvent.event_id.in_(list(event_ids))
        )
    ).all()
    return {str(row[0]): str(row[1]) for row in rows}
