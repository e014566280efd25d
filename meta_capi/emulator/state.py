"""What the emulator remembers: accepted events, the request log, faults, invalid tokens.

``EmulatorState`` is shared by the app and by in-process tests (which may set faults
directly instead of calling the control endpoints). All methods are thread-safe.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal, get_args

__all__ = [
    "FAULT_KINDS",
    "EmulatorState",
    "FaultKind",
    "FaultSpec",
    "RecordedEvent",
    "RecordedRequest",
]

FaultKind = Literal[
    "http_500",
    "http_500_garbled",
    "http_503",
    "http_200_unavailable",
    "rate_limit_4",
    "rate_limit_17",
    "rate_limit_613",
    "rate_limit_80004",
    "transient_2",
    "timeout",
    "slow",
]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))


@dataclass(slots=True)
class FaultSpec:
    """A fault to inject: for one pixel or all, ``count`` times (None = until cleared),
    each matching request with probability ``rate`` (None = always)."""

    kind: FaultKind
    pixel_id: str | None = None
    count: int | None = None
    rate: float | None = None
    delay_seconds: float | None = None
    retry_minutes: float = 1.0
    fired: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One event the emulator accepted, as received."""

    pixel_id: str
    payload: dict[str, object]
    test_event_code: str | None
    partner_agent: str | None
    received_at: float
    request_id: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request to the events edge; ``query_keys`` lists query parameter names only."""

    request_id: str
    pixel_id: str
    path: str
    query_keys: tuple[str, ...]
    body_keys: tuple[str, ...]
    content_type: str
    status_code: int
    outcome: str
    events: int
    received_at: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class EmulatorState:
    """Mutable emulator state behind one lock; ``clock`` is Unix time in seconds."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
        keep_events: bool = True,
    ):
        self.clock = clock
        # False keeps only counts (long benchmarks: a million payloads would fill the memory).
        self.keep_events = keep_events
        self._lock = threading.Lock()
        self._rng = random.Random(seed)  # noqa: S311  # fault sampling, not security
        self._faults: list[FaultSpec] = []
        self._invalid_tokens: set[str] = set()
        self._unknown_pixels: set[str] = set()
        self._events: list[RecordedEvent] = []
        self._requests: list[RecordedRequest] = []
        self._event_counts: Counter[str] = Counter()
        self._request_counts: dict[str, Counter[str]] = defaultdict(Counter)

    def add_fault(
        self,
        kind: FaultKind,
        *,
        pixel_id: str | None = None,
        count: int | None = None,
        rate: float | None = None,
        delay_seconds: float | None = None,
        retry_minutes: float = 1.0,
    ) -> FaultSpec:
        """Inject a fault; the newest matching fault fires first."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1")
        fault = FaultSpec(kind, pixel_id, count, rate, delay_seconds, retry_minutes)
        with self._lock:
            self._faults.insert(0, fault)
        return fault

    def clear_faults(self) -> int:
        with self._lock:
            cleared = len(self._faults)
            self._faults.clear()
        return cleared

    def faults(self) -> list[FaultSpec]:
        with self._lock:
            return list(self._faults)

    def take_fault(self, pixel_id: str) -> FaultSpec | None:
        """The fault that fires for this request, if any (consumes one of its ``count``)."""
        with self._lock:
            for fault in self._faults:
                if fault.pixel_id not in (None, pixel_id):
                    continue
                if fault.rate is not None and self._rng.random() >= fault.rate:
                    continue
                fault.fired += 1
                if fault.count is not None and fault.fired >= fault.count:
                    self._faults.remove(fault)
                return fault
        return None

    def add_invalid_token(self, token: str) -> None:
        """Answer 190/467 to requests carrying ``token``."""
        with self._lock:
            self._invalid_tokens.add(token)

    def is_invalid_token(self, token: str) -> bool:
        with self._lock:
            return token in self._invalid_tokens

    def add_unknown_pixel(self, pixel_id: str) -> None:
        """Answer 100/33 (no such object, or the token may not use it) for ``pixel_id``."""
        with self._lock:
            self._unknown_pixels.add(pixel_id)

    def is_unknown_pixel(self, pixel_id: str) -> bool:
        with self._lock:
            return pixel_id in self._unknown_pixels

    def record(self, request: RecordedRequest, events: list[RecordedEvent]) -> None:
        with self._lock:
            self._event_counts[request.pixel_id] += len(events)
            self._request_counts[request.pixel_id][request.outcome] += 1
            if self.keep_events:
                self._requests.append(request)
                self._events.extend(events)

    def events(self, pixel_id: str | None = None) -> list[RecordedEvent]:
        """Accepted events in arrival order, optionally for one pixel."""
        with self._lock:
            return [e for e in self._events if pixel_id in (None, e.pixel_id)]

    def event_counts(self) -> dict[str, int]:
        """Accepted events per pixel (kept even when ``keep_events`` is False)."""
        with self._lock:
            return dict(self._event_counts)

    def requests(self, pixel_id: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if pixel_id in (None, r.pixel_id)]

    def request_counts(self) -> dict[str, dict[str, int]]:
        """Requests per pixel and outcome (``accepted``, ``rejected:100/2804003``, ...)."""
        with self._lock:
            return {pixel: dict(counter) for pixel, counter in self._request_counts.items()}

    def clear_events(self) -> None:
        """Forget accepted events and the request log."""
        with self._lock:
            self._events.clear()
            self._requests.clear()
            self._event_counts.clear()
            self._request_counts.clear()

    def reset(self) -> None:
        """Forget everything: events, requests, faults and invalid tokens."""
        with self._lock:
            self._events.clear()
            self._requests.clear()
            self._event_counts.clear()
            self._request_counts.clear()
            self._faults.clear()
            self._invalid_tokens.clear()
            self._unknown_pixels.clear()
