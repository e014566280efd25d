"""Repository of ``webhook_receipts``: the delivery ids already accepted, per tenant and source.

A receipt is written only after the event was acknowledged by the broker, so a delivery that
failed half-way is never mistaken for a duplicate when the sender retries it.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import WebhookReceipt

__all__ = ["add_receipt", "has_receipt"]

MAX_DELIVERY_ID = 255  # the column width; longer ids are not tracked (never a 5xx)


def has_receipt(session: Session, tenant_id: uuid.UUID, source: str, delivery_id: str) -> bool:
    """True when this delivery was already accepted once."""
    if len(delivery_id) > MAX_DELIVERY_ID:
        return False
    found = session.scalar(
        select(WebhookReceipt.id).where(
            WebhookReceipt.tenant_id == tenant_id,
            WebhookReceipt.source == source,
            WebhookReceipt.delivery_id == delivery_id,
        )
    )
    return found is not None


def add_receipt(session: Session, tenant_id: uuid.UUID, source: str, delivery_id: str) -> None:
    """Record an accepted delivery; a receipt that already exists is left as it is."""
    if len(delivery_id) > MAX_DELIVERY_ID:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(WebhookReceipt)
        .values(id=uuid.uuid4(), tenant_id=tenant_id, source=source, delivery_id=delivery_id)
        .on_conflict_do_nothing(index_elements=["tenant_id", "source", "delivery_id"])
    )
