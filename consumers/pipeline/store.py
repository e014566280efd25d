"""The worker's database edge: tenants, event rows; errors translated by ``storage.errors``.

Every failure of the database itself (connection refused or dropped, pool timeout, a
locked SQLite file) becomes ``DependencyUnavailableError``: the worker then pauses and
replays the batch instead of burning the events' attempts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from capi_stream.event import EventKey
from storage.errors import map_db_errors
from storage.events import AttemptOutcome, StoredEvent, record_outcomes, upsert_events
from storage.health import ping_session
from storage.tenants import META_PROVIDER, get_credentials, get_tenant

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TenantRecord:
    """A tenant and its Meta credentials (None when it has no Meta integration)."""

    tenant_id: uuid.UUID
    name: str
    default_country: str | None
    meta_credentials: Mapping[str, Any] | None


class SqlEventStore:
    """Repository calls of one batch, each in its own short transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def _run(self, work: Callable[[Session], T]) -> T:
        with map_db_errors("database unavailable"), self._sessions.begin() as session:
            return work(session)

    def ping(self) -> None:
        """``SELECT 1``; raises ``DependencyUnavailableError`` while the database is down."""
        self._run(ping_session)

    def load_tenant(self, tenant_id: uuid.UUID) -> TenantRecord | None:
        def work(session: Session) -> TenantRecord | None:
            tenant = get_tenant(session, tenant_id)
            if tenant is None:
                return None
            credentials = get_credentials(session, tenant_id, META_PROVIDER)
            return TenantRecord(tenant.tenant_id, tenant.name, tenant.default_country, credentials)

        return self._run(work)

    def upsert(self, rows: Sequence[Mapping[str, Any]]) -> dict[EventKey, StoredEvent]:
        return self._run(lambda session: upsert_events(session, rows))

    def record(self, outcomes: Sequence[AttemptOutcome]) -> None:
        if outcomes:
            self._run(lambda session: record_outcomes(session, outcomes))
