"""Readiness: can this process take events right now (a usable producer, broker and database)?

The producer's own state is asked first, on every probe and without I/O: a metadata call
succeeds against a restarted broker while a stuck producer still cannot produce, so a
producer that is being replaced (or gave up) is "unavailable" at once. Otherwise load
balancers probe often; each answer is cached for ``cache_seconds`` so probes cost at most
one metadata round trip and one ``SELECT 1`` per interval, and never pile up. A replaced
producer invalidates the cache: its first answer comes from the new one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from capi_stream.errors import DependencyUnavailableError
from capi_stream.kafka.lifecycle import ClientStatus
from storage.health import ping

__all__ = ["BrokerCheck", "ReadinessProbe", "Readiness"]


class BrokerCheck(Protocol):
    """What readiness asks the publisher (``AsyncEventPublisher``)."""

    def status(self) -> ClientStatus: ...
    def check_broker(self, timeout: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Readiness:
    """Each dependency's state: ``"ok"`` or ``"unavailable"``."""

    broker: str
    database: str

    @property
    def ready(self) -> bool:
        return self.broker == "ok" and self.database == "ok"


class ReadinessProbe:
    """Checks the broker (metadata with a short timeout) and the database, with a small cache."""

    def __init__(
        self,
        publisher: BrokerCheck,
        engine: Engine,
        *,
        timeout_seconds: float = 1.0,
        cache_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publisher = publisher
        self._engine = engine
        self._timeout = timeout_seconds
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cached: tuple[float, int, Readiness] | None = None
        self._lock = asyncio.Lock()

    async def check(self) -> Readiness:
        async with self._lock:  # concurrent probes share one check
            now = self._clock()
            status = self._publisher.status()
            cached = self._cached
            fresh = cached is not None and now - cached[0] < self._cache_seconds
            if fresh and cached is not None and status.ready and cached[1] == status.rebuilds:
                return cached[2]
            broker, database = await asyncio.gather(
                run_in_threadpool(self._broker), run_in_threadpool(self._database)
            )
            result = Readiness(broker, database)
            self._cached = (self._clock(), status.rebuilds, result)
            return result

    def _broker(self) -> str:
        try:
            self._publisher.check_broker(self._timeout)
        except DependencyUnavailableError:
            return "unavailable"
        return "ok"

    def _database(self) -> str:
        try:
            ping(self._engine)
        except DependencyUnavailableError:
            return "unavailable"
        return "ok"
