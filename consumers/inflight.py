"""The batches in flight: finished on up to K finisher threads, committed strictly in order.

The worker's loop prepares batch N+K (decode, contacts, hash) while batches N..N+K-1 are
upserted, sent to Meta, recorded and forwarded on their own finisher threads, so Meta's
latency is paid K batches at a time instead of one. They may complete in any order; the
loop alone commits, and only the oldest batch, once its finisher reported success: a later
batch that completed first waits for every batch before it (committing its offsets would
skip the earlier batch's records on a crash). A dependency outage in any of them rewinds
every batch not committed, from the earliest first offset per partition, after each of
them stopped (so no forward of theirs lands after the producer's purge).

An event in two batches (published twice, or its retry beside it) is never finished twice
at once: the later batch waits until the earlier ones landed, so it finds the row sent
instead of sending it again, and two transactions never upsert the same rows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass

from capi_stream.errors import DependencyUnavailableError
from capi_stream.event import EventKey
from capi_stream.kafka.message import PartitionKey
from consumers.pipeline.processor import BatchReport, Incoming

__all__ = ["Commit", "InFlight", "InFlightBatches", "Rewind", "earliest_offsets"]


@dataclass(slots=True)
class InFlight:
    """A prepared batch on a finisher thread, and what committing it needs."""

    future: Future[BatchReport]
    handled: list[Incoming]
    first: dict[PartitionKey, int]
    records: int
    keys: frozenset[EventKey] = frozenset()
    committed: bool = False


@dataclass(frozen=True, slots=True)
class Rewind:
    """An outage ended the batches in flight: replay from ``first`` (none was committed)."""

    first: dict[PartitionKey, int]
    error: DependencyUnavailableError


def earliest_offsets(*offsets: Mapping[PartitionKey, int]) -> dict[PartitionKey, int]:
    """Per partition, the smallest first offset: where a replay of all these batches starts."""
    merged: dict[PartitionKey, int] = {}
    for mapping in offsets:
        for key, offset in mapping.items():
            merged[key] = min(offset, merged.get(key, offset))
    return merged


Commit = Callable[[Sequence[Incoming]], None]


class InFlightBatches:
    """Up to ``limit`` batches in flight, oldest first.

    A ``Commit`` commits the offsets after a batch's handled records (the worker's, through
    its current consumer) and raises ``DependencyUnavailableError`` when the broker refuses;
    ``observe`` takes each committed batch's record count and report (metrics, dead-letter
    limit) and may raise, after its batch was committed.
    """

    def __init__(self, limit: int, observe: Callable[[int, BatchReport], None]) -> None:
        if limit < 1:
            raise ValueError(f"at least one batch must be allowed in flight, not {limit}")
        self.limit = limit
        self._observe = observe
        self._batches: deque[InFlight] = deque()

    def __len__(self) -> int:
        return len(self._batches)

    def __iter__(self) -> Iterator[InFlight]:
        return iter(self._batches)

    def overlaps(self, keys: Iterable[EventKey]) -> bool:
        """Whether one of these events is in a batch in flight (a duplicate, or its retry)."""
        return any(not batch.keys.isdisjoint(keys) for batch in self._batches)

    def add(self, batch: InFlight) -> None:
        """Track a batch just handed to a finisher (``settle(limit - 1)`` made room)."""
        assert len(self._batches) < self.limit, "settle(limit - 1) before adding"
        self._batches.append(batch)

    def settle(self, keep: int, commit: Commit) -> Rewind | None:
        """Commit every finished batch at the head, in order, and wait for the oldest while
        more than ``keep`` are in flight: ``limit - 1`` makes room for one more, 0 drains.

        Returns a ``Rewind`` (every batch dropped, none committed past the failed one) if a
        batch met an outage, else None.

        Raises:
            DeadLetterLimitError: from ``observe``, after committing that batch.
        """
        while self._batches:
            head = self._batches[0]
            if len(self._batches) <= keep and not head.future.done():
                return None
            try:
                report = head.future.result()
                if not head.committed:
                    commit(head.handled)
            except DependencyUnavailableError as exc:
                return self._rewind_all(exc)
            self._batches.popleft()
            self._observe(head.records, report)
        return None

    def commit_all(self, commit: Commit) -> None:
        """Before a revoke: wait for and commit every batch in order, while the partitions
        are still ours; the first one that fails stops it (``settle`` then rewinds).

        A committed batch stays in flight until ``settle`` observes its report.
        """
        for batch in self._batches:
            if batch.committed:
                continue
            try:
                batch.future.result()
                commit(batch.handled)
            except DependencyUnavailableError:
                return  # the loop settles it: outage, rewind, replay
            batch.committed = True

    def forget(self, gone: set[PartitionKey]) -> None:
        """Drop ``gone`` partitions from every batch: neither committed nor rewound by us."""
        if not gone:
            return
        for batch in self._batches:
            batch.handled = [i for i in batch.handled if (i.topic, i.partition) not in gone]
            batch.first = {key: o for key, o in batch.first.items() if key not in gone}

    def _rewind_all(self, error: DependencyUnavailableError) -> Rewind:
        batches, self._batches = list(self._batches), deque()
        # The others may still be sending or forwarding: they are replayed too, so let them
        # stop first; whatever they report is dropped (none of them is committed).
        wait([batch.future for batch in batches])
        return Rewind(earliest_offsets(*(batch.first for batch in batches)), error)
