"""Persistence: SQLAlchemy models, migrations and the repositories the pipeline uses."""

from capi_stream.database import build_engine, build_session_factory
from storage.events import AttemptOutcome, StoredEvent, record_outcomes, upsert_events
from storage.migrate import migrate
from storage.models import (
    MAX_SEND_ATTEMPTS,
    Contact,
    EventStatus,
    MetaCapiEvent,
    RedriveAudit,
    Tenant,
    TenantIntegration,
    WebhookReceipt,
)

__all__ = [
    "MAX_SEND_ATTEMPTS",
    "AttemptOutcome",
    "Contact",
    "EventStatus",
    "MetaCapiEvent",
    "RedriveAudit",
    "StoredEvent",
    "Tenant",
    "TenantIntegration",
    "WebhookReceipt",
    "build_engine",
    "build_session_factory",
    "migrate",
    "record_outcomes",
    "upsert_events",
]
