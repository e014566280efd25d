"""One webhook delivery, from raw bytes to an acknowledged record on the main topic.

Order matters: the tenant must exist; the request must be authentic before anything else is
looked at; a GHL delivery id seen before is refused (GHL's replay rule); the body is parsed;
the event is published and acknowledged by the broker before the 2xx. Only GHL deliveries
write a receipt, after the ack, so a failed attempt is never a "duplicate". Every other
source's redelivery is simply published again: its deterministic ``event_id`` makes that
harmless (the worker upserts by it and Meta deduplicates on it).

No contact is looked up here: the worker links and records contacts for a whole batch in
one transaction (``consumers.pipeline.contacts``), and the partition key is derived from the event
alone (``producers.publisher.build_key``), so one person's events still reach it in order.
The tenant and its secrets come from a TTL cache (``producers.tenant_cache``): an accepted
non-GHL webhook touches no database at all. The GHL guard's blocking queries run on a small
dedicated thread pool.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ParamSpec, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from capi_stream.errors import DependencyUnavailableError
from capi_stream.event import ConversionEvent
from producers.adapters.base import Ignored, PayloadError, WebhookAdapter, WebhookRequest
from producers.metrics import WebhookMetrics
from producers.publisher import AsyncEventPublisher
from producers.responses import DuplicateDeliveryError, NotFoundError
from producers.tenant_cache import TenantCache, TenantInfo
from storage.errors import map_db_errors
from storage.receipts import add_receipt, has_receipt

__all__ = ["Accepted", "REJECT_DUPLICATE_SOURCES", "WebhookIngestor"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# Sources whose signed delivery ids must be refused when replayed (GHL's documented rule).
REJECT_DUPLICATE_SOURCES = frozenset({"ghl"})


@dataclass(frozen=True, slots=True)
class Accepted:
    """The event is on the topic; ``event_id`` is its deterministic CAPI id."""

    event_id: str


class WebhookIngestor:
    """Runs the steps of one delivery; raises the error that the response module maps."""

    def __init__(
        self,
        adapters: Mapping[str, WebhookAdapter],
        tenants: TenantCache,
        sessions: sessionmaker[Session],
        publisher: AsyncEventPublisher,
        metrics: WebhookMetrics,
        db_threads: int,
    ) -> None:
        # A few dedicated threads, not Starlette's pool of 40: more threads than the
        # database has connections (one writer, for SQLite) only queue on its lock, and
        # SQLite's busy handler then sleeps for milliseconds at a time.
        self._db_pool = ThreadPoolExecutor(max_workers=db_threads, thread_name_prefix="capi-db")
        self._adapters = adapters
        self._tenants = tenants
        self._sessions = sessions
        self._publisher = publisher
        self._metrics = metrics

    async def _run(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_pool, lambda: func(*args, **kwargs))

    def close(self) -> None:
        self._db_pool.shutdown(wait=True)

    def adapter(self, source: str) -> WebhookAdapter:
        """The source's adapter.

        Raises:
            NotFoundError: no such source.
        """
        adapter = self._adapters.get(source)
        if adapter is None:
            raise NotFoundError("unknown source")
        return adapter

    async def tenant(self, tenant_id: uuid.UUID) -> TenantInfo:
        """The tenant, from the cache or (on a miss) the database.

        Raises:
            NotFoundError: no such tenant.
            DependencyUnavailableError: the database cannot be read.
        """
        entry = self._tenants.fresh(tenant_id)
        info = entry.value if entry is not None else await self._run(self._tenants.load, tenant_id)
        if info is None:
            raise NotFoundError("unknown tenant")
        return info

    async def handle(
        self, tenant_id: uuid.UUID, source: str, body: bytes, headers: Mapping[str, str]
    ) -> Accepted | Ignored:
        """Verify, de-duplicate (GHL), parse and publish one delivery."""
        adapter = self.adapter(source)
        tenant = await self.tenant(tenant_id)
        request = WebhookRequest(tenant_id, body, headers, datetime.now(UTC))
        adapter.verify(request, tenant.secrets(source))
        delivery_id = None
        if source in REJECT_DUPLICATE_SOURCES:
            delivery_id = adapter.delivery_id(request)
            if delivery_id is not None:
                seen = await self._run(self._db, has_receipt, tenant_id, source, delivery_id)
                if seen:
                    raise DuplicateDeliveryError("delivery already received")
        event = _parse(adapter, request)
        if isinstance(event, Ignored):
            return event
        started = time.perf_counter()
        await self._publisher.publish(event, default_country=tenant.default_country)
        self._metrics.observe_publish(source, time.perf_counter() - started)
        if delivery_id is not None:
            await self._store_receipt(tenant_id, source, delivery_id, event.event_id)
        return Accepted(event.event_id)

    def _db(self, query: Callable[..., bool], *args: object) -> bool:
        with map_db_errors(), self._sessions() as session:
            return query(session, *args)

    def _write_receipt(self, tenant_id: uuid.UUID, source: str, delivery_id: str) -> None:
        with map_db_errors(), self._sessions() as session:
            add_receipt(session, tenant_id, source, delivery_id)
            session.commit()

    async def _store_receipt(
        self, tenant_id: uuid.UUID, source: str, delivery_id: str, event_id: str
    ) -> None:
        # The event is already acknowledged: a lost receipt only weakens replay rejection
        # (a replay would be re-published under the same event_id), so it is not an error.
        try:
            await self._run(self._write_receipt, tenant_id, source, delivery_id)
        except DependencyUnavailableError as exc:
            cause = type(exc.__cause__).__name__
            logger.warning("receipt not stored for event %s (%s): %s", event_id, source, cause)


def _parse(adapter: WebhookAdapter, request: WebhookRequest) -> ConversionEvent | Ignored:
    """``adapter.parse``; any other exception from a pure parser is the body's fault: 400."""
    try:
        return adapter.parse(request)
    except PayloadError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError) as exc:
        logger.warning(
            "%s adapter raised %s on a body; answering 400", adapter.source, type(exc).__name__
        )
        raise PayloadError("invalid payload") from exc
