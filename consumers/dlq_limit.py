"""The dead-letter limit: stop instead of draining a topic into the DLQ when something
systemic breaks (a bad deploy, a revoked token for every tenant, a schema mix-up)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from capi_stream.errors import CapiError


class DeadLetterLimitError(CapiError):
    """More dead letters than allowed within the window; the worker stopped."""


class DeadLetterLimit:
    """Counts dead letters in a sliding window of ``window_seconds``."""

    def __init__(
        self,
        max_count: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_count = max_count
        self.window_seconds = window_seconds
        self._clock = clock
        self._times: deque[float] = deque()

    def add(self, count: int = 1) -> None:
        now = self._clock()
        self._times.extend([now] * count)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window_seconds:
            self._times.popleft()

    @property
    def recent(self) -> int:
        self._trim(self._clock())
        return len(self._times)

    def exceeded(self) -> bool:
        """True when more than ``max_count`` dead letters fell within the window."""
        return self.recent > self.max_count

    def error(self) -> DeadLetterLimitError:
        return DeadLetterLimitError(
            f"dead-letter limit reached: {self.recent} dead letters in the last "
            f"{self.window_seconds:g}s (limit {self.max_count}); the worker stopped after "
            "committing what it handled. Inspect the DLQ (`capi dlq list`), fix the cause, "
            "then restart (raise DLQ_LIMIT_COUNT only if the volume is expected)"
        )
