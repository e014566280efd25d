"""The replay's request, summary and progress seam (``ops.replay.run`` runs it)."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from capi_stream.errors import CapiError

__all__ = ["ReplayProgress", "ReplayRequest", "ReplayRequestError", "ReplaySummary"]


class ReplayRequestError(CapiError):
    """The replay was asked for something it must not do (e.g. the live group)."""


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """What to replay and how; empty filter sets mean "everything".

    The range is ``[start_ms, end_ms)``: record timestamps, the end excluded.
    """

    topic: str
    start_ms: int
    end_ms: int  # excluded
    tenant_ids: frozenset[uuid.UUID] = frozenset()
    event_names: frozenset[str] = frozenset()
    group_id: str | None = None
    resend: bool = False
    no_send: bool = False
    dry_run: bool = False
    batch_size: int = 500
    max_rate: float | None = None  # matched events per second, at most


@dataclass(slots=True)
class ReplaySummary:
    """What a replay read and did; ``outcomes`` counts (tenant, event name, outcome)."""

    scanned: int = 0
    in_range: int = 0
    matched: int = 0
    undecodable: int = 0
    forwarded: int = 0
    dead_lettered: int = 0
    not_copied_again: int = 0  # failed again, but the DLQ already holds their dead letter
    failed_by_class: dict[str, int] = field(default_factory=dict)
    outcomes: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    lookup_used: bool = False
    expected: int | None = None

    def by_outcome(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for (_tenant, _name, outcome), count in self.outcomes.items():
            totals[outcome] += count
        return totals


class ReplayProgress(Protocol):
    """Where progress goes (the CLI draws a bar); ``expected`` None = unknown size."""

    def start(self, expected: int | None) -> None: ...

    def advance(self, scanned: int, in_range: int) -> None: ...
