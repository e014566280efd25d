"""SQLAlchemy models: the same tables on SQLite (embedded default) and PostgreSQL.

No raw PII is stored anywhere: user data columns hold SHA-256 hex digests, and the
``user_data`` JSON holds the exact hashed ``user_data`` object sent to Meta.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from capi_stream.event import SOURCE_ID_FIELDS

MAX_SEND_ATTEMPTS = 5

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Timestamp = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, datetime: Timestamp}


class EventStatus(StrEnum):
    """Values of ``meta_capi_events.status``."""

    PENDING = "pending"
    SENT = "sent"
    RETRYING = "retrying"
    DEAD = "dead"
    EXPIRED = "expired"
    SKIPPED = "skipped"  # recorded only (replay --no-send)


class Tenant(Base):
    """A business using the pipeline; ``default_country`` resolves national phone numbers."""

    __tablename__ = "tenants"

    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    default_country: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class TenantIntegration(Base):
    """Credentials of one provider for one tenant: ``meta`` (pixel and token) or a source.

    ``sealed_credentials`` is a Fernet token of the credentials' JSON (``capi_stream.secrets``):
    no token or webhook secret is stored in clear. Read and write them through
    ``storage.tenants``, which holds the key.
    """

    __tablename__ = "tenant_integrations"
    __table_args__ = (UniqueConstraint("tenant_id", "provider"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    provider: Mapped[str] = mapped_column(String(32))
    sealed_credentials: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    def __repr__(self) -> str:  # credentials hold tokens and secrets: never print them
        return f"TenantIntegration(tenant_id={self.tenant_id}, provider={self.provider!r})"


def _linking_index(name: str, column: str, *, unique: bool = False) -> Index:
    """``(tenant_id, column)`` over the rows where ``column`` is set."""
    where = text(f"{column} IS NOT NULL")
    return Index(
        name, "tenant_id", column, unique=unique, postgresql_where=where, sqlite_where=where
    )


class Contact(Base):
    """What the sources taught us about a person: ids, hashed identity, attribution."""

    __tablename__ = "contacts"
    # Partial: only the values a contact has are indexed, and a lookup by one column can use
    # only that column's index (migration 0005 says why). Source ids are unique per tenant.
    __table_args__ = (
        *(
            _linking_index(f"uq_contacts_tenant_id_{column}", column, unique=True)
            for column in SOURCE_ID_FIELDS
        ),
        _linking_index("ix_contacts_tenant_email", "email_hash"),
        _linking_index("ix_contacts_tenant_phone", "phone_hash"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    mc_subscriber_id: Mapped[str | None] = mapped_column(String(128))
    ghl_contact_id: Mapped[str | None] = mapped_column(String(128))
    stripe_customer_id: Mapped[str | None] = mapped_column(String(128))
    perspective_contact_id: Mapped[str | None] = mapped_column(String(128))
    denefits_contract_code: Mapped[str | None] = mapped_column(String(128))
    email_hash: Mapped[str | None] = mapped_column(String(64))
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    fbclid: Mapped[str | None] = mapped_column(String(512))
    fbc: Mapped[str | None] = mapped_column(String(600))
    fbc_first_seen_at: Mapped[datetime | None]
    fbp: Mapped[str | None] = mapped_column(String(512))
    ad_id: Mapped[str | None] = mapped_column(String(512))
    ctwa_clid: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class MetaCapiEvent(Base):
    """One conversion and its delivery to Meta; unique per (tenant, event_id)."""

    __tablename__ = "meta_capi_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "event_id"),
        # Serves the retry drain: unsent, under the attempt limit, oldest first, per tenant.
        Index(
            "ix_meta_capi_events_unsent",
            "tenant_id",
            "created_at",
            postgresql_where=text("sent_to_meta = false AND send_attempts < 5"),
            sqlite_where=text("sent_to_meta = 0 AND send_attempts < 5"),
        ),
        Index("ix_meta_capi_events_status", "tenant_id", "status", "event_name"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    contact_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    event_name: Mapped[str] = mapped_column(String(100))
    event_time: Mapped[datetime]
    event_id: Mapped[str] = mapped_column(String(255))
    action_source: Mapped[str] = mapped_column(String(32))
    event_source_url: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(32))
    source_event_id: Mapped[str] = mapped_column(String(512))

    user_email_hash: Mapped[str | None] = mapped_column(String(64))
    user_phone_hash: Mapped[str | None] = mapped_column(String(64))
    user_first_name_hash: Mapped[str | None] = mapped_column(String(64))
    user_last_name_hash: Mapped[str | None] = mapped_column(String(64))
    user_gender_hash: Mapped[str | None] = mapped_column(String(64))
    user_date_of_birth_hash: Mapped[str | None] = mapped_column(String(64))
    user_city_hash: Mapped[str | None] = mapped_column(String(64))
    user_state_hash: Mapped[str | None] = mapped_column(String(64))
    user_zip_hash: Mapped[str | None] = mapped_column(String(64))
    user_country_hash: Mapped[str | None] = mapped_column(String(64))
    user_external_id: Mapped[str | None] = mapped_column(String(64))
    user_fbp: Mapped[str | None] = mapped_column(String(512))
    user_fbc: Mapped[str | None] = mapped_column(String(600))
    user_data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    ad_id: Mapped[str | None] = mapped_column(String(512))
    event_value: Mapped[Decimal | None] = mapped_column(Numeric(20, 4))
    currency: Mapped[str | None] = mapped_column(String(3))
    custom_data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    status: Mapped[str] = mapped_column(String(16), default=EventStatus.PENDING)
    sent_to_meta: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    send_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    meta_fbtrace_id: Mapped[str | None] = mapped_column(String(128))
    meta_response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    send_error: Mapped[str | None] = mapped_column(Text)

    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    sent_at: Mapped[datetime | None]
    last_send_attempt_at: Mapped[datetime | None]


class WebhookReceipt(Base):
    """Deliveries already accepted, by the sender's delivery id: rejects replayed webhooks."""

    __tablename__ = "webhook_receipts"
    __table_args__ = (UniqueConstraint("tenant_id", "source", "delivery_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    source: Mapped[str] = mapped_column(String(32))
    delivery_id: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())


class RedriveAudit(Base):
    """Who redrove which dead letter, when, and how often that event was redriven before."""

    __tablename__ = "redrive_audit"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    actor: Mapped[str] = mapped_column(String(200))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    event_id: Mapped[str | None] = mapped_column(String(255), index=True)
    dlq_topic: Mapped[str] = mapped_column(String(255))
    dlq_partition: Mapped[int] = mapped_column(Integer)
    dlq_offset: Mapped[int] = mapped_column(Integer)
    target_topic: Mapped[str] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
