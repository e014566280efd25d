"""Repository of ``webhook_receipts``: the delivery ids already accepted, per tenant and source.

A receipt is written only after the event was acknowledged by the broker, so a delivery that
failed half-way is never mistaken for a duplicate when the sender retries it.
"""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import WebhookReceipt

__all__ = ["add_receipt", "has_receipt", "stored_delivery_id"]

MAX_DELIVERY_ID = 255  # the column width


def stored_delivery_id(delivery_id: str) -> str:
    """The id as its column holds it: itself, or a digest when the column could not take it.

    Longer than the column, holding a NUL (PostgreSQL text cannot) or a lone surrogate (no
    UTF-8 form; JSON's "\\ud800" escape decodes to one): any of these would fail the query,
    so such an id is kept as ``sha256:<hex>`` and its replays are still recognised.
    """
    if len(delivery_id) <= MAX_DELIVERY_ID and "\x00" not in delivery_id:
        if delivery_id.isascii():
            return delivery_id
        try:
            delivery_id.encode()
            return delivery_id
        except UnicodeEncodeError:
            pass
    digest = hashlib.sha256(delivery_id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest}"


def has_receipt(session: Session, tenant_id: uuid.UUID, source: str, delivery_id: str) -> bool:
    """True when this delivery was already accepted once."""
    delivery_id = stored_delivery_id(delivery_id)
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
    delivery_id = stored_delivery_id(delivery_id)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(WebhookReceipt)
        .values(id=uuid.uuid4(), tenant_id=tenant_id, source=source, delivery_id=delivery_id)
        .on_conflict_do_nothing(index_elements=["tenant_id", "source", "delivery_id"])
    )
