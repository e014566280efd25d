"""A short-lived cache of tenants and their webhook secrets, so the hot path reads no database.

TTL: ``ttl_seconds`` (default 5 s, ``capi serve --tenant-cache-ttl``). A new tenant, a rotated
secret or a deleted integration takes effect within that time; an unknown tenant id is cached
as unknown for the same time, so random ids cannot turn every request into a query.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.errors import DependencyUnavailableError
from storage.models import Tenant
from storage.tenants import get_integrations

__all__ = ["DEFAULT_TTL_SECONDS", "CacheEntry", "TenantCache", "TenantInfo"]

DEFAULT_TTL_SECONDS = 5.0
_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class TenantInfo:
    """What the webhook path needs of a tenant: its country and each provider's credentials."""

    tenant_id: uuid.UUID
    default_country: str | None
    credentials: Mapping[str, Mapping[str, Any]]

    def secrets(self, provider: str) -> Mapping[str, Any] | None:
        return self.credentials.get(provider)


@dataclass(frozen=True, slots=True)
class CacheEntry:
    info: TenantInfo | None
    expires_at: float


class TenantCache:
    """Tenant lookups with a TTL; ``fresh`` never blocks, ``load`` queries (run it in a thread)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[uuid.UUID, CacheEntry] = {}
        self._lock = threading.Lock()

    def fresh(self, tenant_id: uuid.UUID) -> CacheEntry | None:
        """The cached entry if still valid (its ``info`` is None for an unknown tenant)."""
        entry = self._entries.get(tenant_id)
        if entry is None or entry.expires_at <= self._clock():
            return None
        return entry

    def load(self, tenant_id: uuid.UUID) -> TenantInfo | None:
        """Read the tenant and its integrations, cache the result, return it.

        Raises:
            DependencyUnavailableError: the database cannot be read.
        """
        try:
            with self._sessions() as session:
                tenant = session.get(Tenant, tenant_id)
                info = None
                if tenant is not None:
                    # Sealed at rest: storage opens them with the key of our sessions.
                    integrations = get_integrations(session, tenant_id)
                    info = TenantInfo(tenant_id, tenant.default_country, integrations)
        except SQLAlchemyError as exc:
            raise DependencyUnavailableError(f"tenant lookup failed: {type(exc).__name__}") from exc
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
            self._entries[tenant_id] = CacheEntry(info, self._clock() + self._ttl)
        return info
