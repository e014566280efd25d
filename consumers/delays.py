"""Time bookkeeping of the worker: tier due times, paused partitions, outage backoff.

Nothing here sleeps: the worker asks "what is due now?" on every loop iteration, so the
poll loop keeps running (group heartbeats, rebalances) while partitions wait.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from capi_stream.kafka.message import PartitionKey


def tier_delay_seconds(delays: Sequence[float], next_attempt: int) -> float:
    """The wait before attempt ``next_attempt`` (2..len(delays)+1): ``delays[next_attempt-2]``.

    After attempt n fails the record waits ``delays[n-1]``; attempts beyond the last tier
    reuse its delay.
    """
    if not delays:
        return 0.0
    index = min(max(next_attempt - 2, 0), len(delays) - 1)
    return float(delays[index])


def due_ms_for(delays: Sequence[float], next_attempt: int, now_ms: int) -> int:
    """Unix milliseconds at which attempt ``next_attempt`` may run."""
    return now_ms + round(tier_delay_seconds(delays, next_attempt) * 1000)


def is_due(due_ms: int | None, now_ms: int) -> bool:
    """A record with no due time, or one whose time has come, may be processed."""
    return due_ms is None or due_ms <= now_ms


@dataclass(slots=True)
class PauseBook:
    """Partitions paused until a record's due time: ``key -> (offset, due_ms)``."""

    _paused: dict[PartitionKey, tuple[int, int]] = field(default_factory=dict)

    def pause(self, key: PartitionKey, offset: int, due_ms: int) -> None:
        self._paused[key] = (offset, due_ms)

    def take_due(self, now_ms: int) -> list[PartitionKey]:
        """Remove and return the partitions whose due time has come."""
        due = [key for key, (_, when) in self._paused.items() if when <= now_ms]
        for key in due:
            del self._paused[key]
        return due

    def drop(self, keys: Iterable[PartitionKey]) -> None:
        """Forget partitions that were revoked or lost; the next owner re-reads them."""
        for key in keys:
            self._paused.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._paused

    def __len__(self) -> int:
        return len(self._paused)

    def keys(self) -> set[PartitionKey]:
        return set(self._paused)

    def next_due_ms(self) -> int | None:
        return min((when for _, when in self._paused.values()), default=None)

    def overdue(self, now_ms: int, margin_ms: int) -> list[PartitionKey]:
        """Partitions still booked well past their due time (should never happen)."""
        return [k for k, (_, when) in self._paused.items() if when + margin_ms < now_ms]


@dataclass(slots=True)
class Backoff:
    """Full-jitter exponential backoff: ``random() * min(base * 2**n, cap)``."""

    base_seconds: float = 0.5
    cap_seconds: float = 30.0
    rng: Callable[[], float] = random.random
    failures: int = 0

    def next_delay(self) -> float:
        """The wait after one more consecutive failure."""
        ceiling: float = min(self.base_seconds * 2.0**self.failures, self.cap_seconds)
        self.failures += 1
        jitter: float = self.rng()
        return jitter * ceiling

    def reset(self) -> None:
        self.failures = 0


@dataclass(slots=True)
class TenantBlocks:
    """Tenants Meta rate limited, blocked until a monotonic-free Unix millisecond time.

    Shared by the batches finishing at once on their own threads: every access holds a lock.
    """

    _until_ms: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def block(self, tenant_id: str, until_ms: int) -> None:
        with self._lock:
            self._until_ms[tenant_id] = max(self._until_ms.get(tenant_id, 0), until_ms)

    def blocked_until(self, tenant_id: str, now_ms: int) -> int | None:
        with self._lock:
            until = self._until_ms.get(tenant_id)
            if until is None:
                return None
            if until <= now_ms:
                del self._until_ms[tenant_id]
                return None
            return until

    def active(self, now_ms: int) -> dict[str, int]:
        """Tenants still blocked at ``now_ms`` -> block end (for the paused-tenant metric)."""
        with self._lock:
            return {tenant: until for tenant, until in self._until_ms.items() if until > now_ms}
