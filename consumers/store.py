"""The worker's database edge: tenants, contacts, event rows; SQLAlchemy errors translated.

Every failure of the database itself (connection refused or dropped, pool timeout, a
locked SQLite file) becomes ``DependencyUnavailableError``: the worker then pauses and
replays the batch instead of burning the events' attempts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.errors import DependencyUnavailableError
from consumers.enrich import ContactHints
from storage.events import AttemptOutcome, EventKey, StoredEvent, record_outcomes, upsert_events
from storage.models import Contact
from storage.tenants import META_PROVIDER, get_credentials, get_tenant

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TenantRecord:
    """A tenant and its Meta credentials (None when it has no Meta integration)."""

    tenant_id: uuid.UUID
    name: str
    default_country: str | None
    meta_credentials: Mapping[str, Any] | None


@contextmanager
def translate_db_errors() -> Iterator[None]:
    """Turn database unavailability into ``DependencyUnavailableError``."""
    try:
        yield
    except (DBAPIError, PoolTimeoutError) as exc:
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        raise DependencyUnavailableError(f"database unavailable: {type(cause).__name__}") from exc
    except SQLAlchemyError as exc:
        raise DependencyUnavailableError(f"database error: {type(exc).__name__}") from exc


class SqlEventStore:
    """Repository calls of one batch, each in its own short transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def _run(self, work: Callable[[Session], T]) -> T:
        with translate_db_errors(), self._sessions.begin() as session:
            return work(session)

    def ping(self) -> None:
        """``SELECT 1``; raises ``DependencyUnavailableError`` while the database is down."""
        self._run(lambda session: session.execute(text("SELECT 1")).scalar())

    def load_tenant(self, tenant_id: uuid.UUID) -> TenantRecord | None:
        def work(session: Session) -> TenantRecord | None:
            tenant = get_tenant(session, tenant_id)
            if tenant is None:
                return None
            credentials = get_credentials(session, tenant_id, META_PROVIDER)
            return TenantRecord(tenant.tenant_id, tenant.name, tenant.default_country, credentials)

        return self._run(work)

    def load_contacts(
        self, keys: Iterable[tuple[uuid.UUID, uuid.UUID]]
    ) -> dict[uuid.UUID, ContactHints]:
        """Contacts by id, restricted to their tenant: ``(tenant_id, contact_id)`` pairs."""
        wanted = set(keys)
        if not wanted:
            return {}

        def work(session: Session) -> dict[uuid.UUID, ContactHints]:
            rows = session.scalars(
                select(Contact).where(Contact.id.in_([contact for _, contact in wanted]))
            )
            return {
                row.id: ContactHints(
                    contact_id=row.id,
                    fbc=row.fbc,
                    fbp=row.fbp,
                    ad_id=row.ad_id,
                    ctwa_clid=row.ctwa_clid,
                    fbclid=row.fbclid,
                    fbc_first_seen_at=row.fbc_first_seen_at,
                )  # fmt: skip
                for row in rows
                if (row.tenant_id, row.id) in wanted
            }

        return self._run(work)

    def upsert(self, rows: Sequence[Mapping[str, Any]]) -> dict[EventKey, StoredEvent]:
        return self._run(lambda session: upsert_events(session, rows))

    def record(self, outcomes: Sequence[AttemptOutcome]) -> None:
        if outcomes:
            self._run(lambda session: record_outcomes(session, outcomes))
