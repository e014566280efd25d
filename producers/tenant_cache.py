"""A short-lived cache of tenants and their webhook secrets, so the hot path reads no database.

TTL: ``ttl_seconds`` (default 5 s, ``capi serve --tenant-cache-ttl``). A new tenant, a rotated
secret or a deleted integration takes effect within that time; an unknown tenant id is cached
as unknown for the same time, so random ids cannot turn every request into a query.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy.orm import Session, sessionmaker

from capi_stream.cache import CacheEntry as _Entry
from capi_stream.cache import TtlCache
from storage.errors import map_db_errors
from storage.tenants import get_integrations, get_tenant

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


# ``value`` is None for a tenant known not to exist.
CacheEntry: TypeAlias = _Entry[TenantInfo | None]


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
        self._cache: TtlCache[uuid.UUID, TenantInfo | None] = TtlCache(
            clock=clock, max_entries=_MAX_ENTRIES
        )

    def fresh(self, tenant_id: uuid.UUID) -> CacheEntry | None:
        """The cached entry if still valid (its ``value`` is None for an unknown tenant)."""
        return self._cache.fresh(tenant_id)

    def load(self, tenant_id: uuid.UUID) -> TenantInfo | None:
        """Read the tenant and its integrations, cache the result, return it.

        Raises:
            DependencyUnavailableError: the database cannot be read.
        """
        with map_db_errors("tenant lookup failed"), self._sessions() as session:
            tenant = get_tenant(session, tenant_id)
            info = None
            if tenant is not None:
                # Sealed at rest: storage opens them with the key of our sessions.
                integrations = get_integrations(session, tenant_id)
                info = TenantInfo(tenant_id, tenant.default_country, integrations)
        self._cache.put(tenant_id, info, self._ttl)
        return info
