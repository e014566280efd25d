"""A TTL cache of tenants, their Meta credentials and one Meta client per tenant.

A batch looks every tenant up once; the database is asked again only after ``ttl_seconds``
(so a rotated token takes effect within that time). A tenant that cannot send (unknown, or
no usable Meta integration) is remembered only ``negative_ttl_seconds``: its events are
dead-lettered, so the fix an operator makes must be seen within seconds, not a minute. A
client is rebuilt only when the tenant's credentials changed, keeping its connection pool.

Rotation without races: the loop thread resolves tenants while the finisher thread sends the
batch before with the clients it leased (``lease``). A replaced client is retired, not
closed: it is closed when the last lease on it ends, so a send in flight never meets a
closed connection pool (which would fail as a bug and be dead-lettered). The TTL plumbing is
``capi_stream.cache.TtlCache``, shared with the webhook app's tenant cache.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from capi_stream.cache import TtlCache
from capi_stream.errors import ConfigurationError, PermanentError, UnknownTenantError
from consumers.pipeline.store import TenantRecord
from meta_capi.client import BatchOutcome
from meta_capi.server_event import ServerEvent


class MetaSender(Protocol):
    """What the worker needs of ``MetaCAPIClient``."""

    def send_events(self, events: Sequence[ServerEvent]) -> BatchOutcome: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class TenantContext:
    """A tenant ready to send: its phone/geo default country and its Meta client."""

    tenant_id: uuid.UUID
    default_country: str | None
    client: MetaSender


def _fingerprint(credentials: Mapping[str, Any]) -> str:
    text = json.dumps(dict(credentials), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def missing_meta_message(tenant_id: uuid.UUID, detail: str | None = None) -> str:
    """The dead-letter reason of a tenant that cannot send, saying what to fix."""
    what = detail or "has no Meta integration"
    return (
        f"tenant {tenant_id} {what}: run `capi tenants set-meta {tenant_id} "
        "--pixel-id <PIXEL_ID> --access-token <CAPI_TOKEN>`, then redrive the dead letters"
    )


class TenantCache:
    """``get(tenant_id)`` -> ``TenantContext``, or the permanent error that dead-letters."""

    def __init__(
        self,
        load: Callable[[uuid.UUID], TenantRecord | None],
        build_client: Callable[[Mapping[str, Any]], MetaSender],
        *,
        ttl_seconds: float = 60.0,
        negative_ttl_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._build_client = build_client
        self._ttl = ttl_seconds
        self._negative_ttl = min(negative_ttl_seconds, ttl_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: TtlCache[uuid.UUID, TenantContext | PermanentError] = TtlCache(clock=clock)
        self._clients: dict[uuid.UUID, tuple[str, MetaSender]] = {}
        # Leases by id(client); a retired client is closed when its count drops to 0.
        self._leases: dict[int, int] = {}
        self._retired: dict[int, MetaSender] = {}

    def get(self, tenant_id: uuid.UUID) -> TenantContext:
        """The tenant's context.

        Raises:
            UnknownTenantError: no such tenant.
            ConfigurationError: the tenant has no (or an incomplete) Meta integration.
            DependencyUnavailableError: the database is down (never cached).
        """
        now = self._clock()
        cached = self._entries.fresh(tenant_id, now=now)
        if cached is None:
            value = self._resolve(tenant_id)
            self._entries.put(tenant_id, value, self._ttl_of(value), now=now)
        else:
            value = cached.value
        if isinstance(value, PermanentError):
            raise value
        return value

    def _resolve(self, tenant_id: uuid.UUID) -> TenantContext | PermanentError:
        record = self._load(tenant_id)
        if record is None:
            return UnknownTenantError(str(tenant_id))
        if not record.meta_credentials:
            return ConfigurationError(missing_meta_message(tenant_id))
        fingerprint = _fingerprint(record.meta_credentials)
        with self._lock:
            known = self._clients.get(tenant_id)
        if known is not None and known[0] == fingerprint:
            client = known[1]
        else:
            try:
                client = self._build_client(record.meta_credentials)
            except ConfigurationError as exc:
                return ConfigurationError(
                    missing_meta_message(tenant_id, f"has an unusable Meta integration ({exc})")
                )
            with self._lock:
                replaced = self._clients.get(tenant_id)
                self._clients[tenant_id] = (fingerprint, client)
                closable = self._retire(replaced[1]) if replaced is not None else None
            if closable is not None:
                closable.close()
        return TenantContext(tenant_id, record.default_country, client)

    def rotated_since(self, tenant_id: uuid.UUID, used: MetaSender) -> bool:
        """Re-read the tenant now: True when its credentials changed since ``used`` was built.

        For a send Meta refused for its token (code 190): if the token was rotated meanwhile
        (the old one revoked), the events are not at fault and go again with the new one,
        without waiting for the TTL.

        Raises:
            DependencyUnavailableError: the database is down.
        """
        value = self._resolve(tenant_id)
        self._entries.put(tenant_id, value, self._ttl_of(value))
        with self._lock:
            known = self._clients.get(tenant_id)
        return known is not None and known[1] is not used

    def _ttl_of(self, value: TenantContext | PermanentError) -> float:
        return self._negative_ttl if isinstance(value, PermanentError) else self._ttl

    def _retire(self, client: MetaSender) -> MetaSender | None:
        """Under the lock: the client to close now, or None if a lease still uses it."""
        if self._leases.get(id(client), 0) > 0:
            self._retired[id(client)] = client
            return None
        return client

    @contextmanager
    def lease(
        self, contexts: Mapping[uuid.UUID, TenantContext]
    ) -> Iterator[dict[uuid.UUID, MetaSender]]:
        """Each tenant's current client, kept open until the block ends (even if replaced).

        The current client (not the one ``contexts`` were resolved with) is taken, so a
        token rotated since the batch was prepared is used at once; a tenant whose client
        was never cached here falls back to its context's.
        """
        with self._lock:
            clients: dict[uuid.UUID, MetaSender] = {}
            for tenant_id, context in contexts.items():
                known = self._clients.get(tenant_id)
                client = known[1] if known is not None else context.client
                clients[tenant_id] = client
                self._leases[id(client)] = self._leases.get(id(client), 0) + 1
        try:
            yield clients
        finally:
            closable: list[MetaSender] = []
            with self._lock:
                for client in clients.values():
                    left = self._leases[id(client)] - 1
                    if left > 0:
                        self._leases[id(client)] = left
                        continue
                    del self._leases[id(client)]
                    retired = self._retired.pop(id(client), None)
                    if retired is not None:
                        closable.append(retired)
            for client in closable:
                client.close()

    def close(self) -> None:
        """Close every client, retired ones included (the worker's sends have ended)."""
        with self._lock:
            clients = [client for _, client in self._clients.values()]
            clients += self._retired.values()
            self._clients.clear()
            self._retired.clear()
        self._entries.clear()
        for client in clients:
            client.close()
