"""``capi replay --dry-run``: what a replay would do to each event, reading only.

The prediction follows the pipeline's order: unknown tenant or no Meta integration ->
dead letter; a row already sent -> skipped (unless ``--resend``); older than Meta's 7 days
-> expired; otherwise sent (or, with ``--no-send``, recorded). Validation of the event's
own fields happens only in a real run, so a "would send" may still end as a dead letter.
Nothing is written: no rows, no sends, no records produced, no offsets committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from capi_stream.event import ConversionEvent, EventKey
from consumers.pipeline.store import SqlEventStore, TenantRecord
from meta_capi.validation import is_expired
from ops.replay.modes import Outcome
from storage.errors import map_db_errors
from storage.lookups import find_sent_keys

__all__ = ["DryRunPlanner"]


class DryRunPlanner:
    """Predicts each event's outcome; caches tenants for the whole run."""

    def __init__(self, sessions: sessionmaker[Session], *, resend: bool, no_send: bool) -> None:
        self._sessions = sessions
        self._tenants = SqlEventStore(sessions)
        self._resend = resend
        self._no_send = no_send
        self._known: dict[uuid.UUID, TenantRecord | None] = {}

    def predict(self, events: Sequence[ConversionEvent], now: datetime) -> dict[EventKey, str]:
        """``would ...`` outcome per (tenant_id, event_id).

        Raises:
            DependencyUnavailableError: the database is unavailable.
        """
        sent = self._already_sent(events)
        outcomes: dict[EventKey, str] = {}
        for event in events:
            key = (event.tenant_id, event.event_id)
            outcomes.setdefault(key, "would be " + self._predict_one(event, key in sent, now))
        return outcomes

    def _predict_one(self, event: ConversionEvent, was_sent: bool, now: datetime) -> str:
        tenant = self._tenant(event.tenant_id)
        if tenant is None or not (tenant.meta_credentials or self._no_send):
            return Outcome.DEAD_TENANT
        if was_sent and not self._resend:
            return Outcome.ALREADY_SENT
        if is_expired(event.event_time, now):
            return Outcome.EXPIRED
        if self._no_send:
            return Outcome.RECORDED
        return Outcome.RESENT if was_sent else Outcome.SENT

    def _tenant(self, tenant_id: uuid.UUID) -> TenantRecord | None:
        if tenant_id not in self._known:
            self._known[tenant_id] = self._tenants.load_tenant(tenant_id)
        return self._known[tenant_id]

    def _already_sent(self, events: Sequence[ConversionEvent]) -> set[EventKey]:
        by_tenant: dict[uuid.UUID, list[str]] = {}
        for event in events:
            by_tenant.setdefault(event.tenant_id, []).append(event.event_id)
        found: set[EventKey] = set()
        with map_db_errors("database unavailable"), self._sessions() as session:
            for tenant_id, event_ids in by_tenant.items():
                found |= find_sent_keys(session, tenant_id, event_ids)
        return found
