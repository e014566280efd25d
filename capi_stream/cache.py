"""A small thread-safe TTL cache: the plumbing both tenant caches share.

``producers.tenant_cache`` keeps webhook secrets in it, ``consumers.pipeline.tenants`` Meta
clients; what each does on a miss (a query, a client build, lease bookkeeping) stays in its
own module. Each entry carries its own expiry, so a caller can remember a negative answer
for a shorter time than a positive one. The clock is injected, so tests step time instead
of sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["CacheEntry", "TtlCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class CacheEntry(Generic[V]):
    """A cached ``value`` (which may itself be None: "known not to exist") and its expiry."""

    value: V
    expires_at: float


class TtlCache(Generic[K, V]):
    """``fresh(key)`` -> the entry while ``clock() < expires_at``; ``put`` with a TTL.

    ``max_entries`` bounds memory against a spray of random keys: reaching it clears the
    cache (every entry is re-read at most once more, which a TTL cache tolerates anyway).
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_entries: int | None = None
    ) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[K, CacheEntry[V]] = {}
        self._lock = threading.Lock()

    def now(self) -> float:
        """The cache's clock, for callers that stamp a moment before a slow load."""
        return self._clock()

    def fresh(self, key: K, *, now: float | None = None) -> CacheEntry[V] | None:
        """The entry of ``key`` if it has not expired at ``now`` (default: the clock)."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry.expires_at <= (self._clock() if now is None else now):
            return None
        return entry

    def put(self, key: K, value: V, ttl_seconds: float, *, now: float | None = None) -> None:
        """Cache ``value`` until ``now`` (default: the clock) + ``ttl_seconds``."""
        start = self._clock() if now is None else now
        with self._lock:
            if self._max_entries is not None and len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key] = CacheEntry(value, start + ttl_seconds)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
