"""The batches in flight: commits strictly in batch order, an outage rewinds them all.

Unit tests of ``InFlightBatches`` with hand-completed futures (no threads, no broker): the
worker's integration tests (``test_worker_*``) run the same logic against the real broker.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from concurrent.futures import Future

import pytest

from capi_stream.errors import DependencyUnavailableError
from capi_stream.kafka.message import PartitionKey
from capi_stream.settings import CapiSettings
from consumers.config import WorkerConfig
from consumers.dlq_limit import DeadLetterLimitError
from consumers.headers import HopContext, Origin
from consumers.inflight import InFlight, InFlightBatches, earliest_offsets
from consumers.pipeline.items import BatchReport, Incoming

MAIN = "capi.events"


def _incoming(partition: int, offset: int) -> Incoming:
    origin = Origin(MAIN, partition, offset, 0)
    return Incoming(MAIN, partition, offset, None, b"", HopContext(1, None, origin))


def _batch(partition: int, offsets: range) -> InFlight:
    handled = [_incoming(partition, offset) for offset in offsets]
    first: dict[PartitionKey, int] = {(MAIN, partition): offsets[0]}
    return InFlight(Future(), handled, first, len(handled))


class Book:
    """Records what was committed and observed, in order."""

    def __init__(self) -> None:
        self.committed: list[list[tuple[int, int]]] = []
        self.observed: list[int] = []
        self.refuse = False

    def commit(self, handled: Sequence[Incoming]) -> None:
        if self.refuse:
            raise DependencyUnavailableError("offset commit failed: broker down")
        self.committed.append([(i.partition, i.offset) for i in handled])

    def observe(self, records: int, report: BatchReport) -> None:
        self.observed.append(report.sent)


def _done(batch: InFlight, sent: int = 0) -> None:
    batch.future.set_result(BatchReport(sent=sent))


def _failed(batch: InFlight) -> None:
    batch.future.set_exception(DependencyUnavailableError("database unavailable"))


def test_a_later_batch_that_finished_first_waits_for_the_earlier_one() -> None:
    book = Book()
    batches = InFlightBatches(3, book.observe)
    older, newer = _batch(0, range(0, 2)), _batch(0, range(2, 4))
    batches.add(older)
    batches.add(newer)
    _done(newer, sent=2)
    assert batches.settle(len(batches), book.commit) is None  # nothing finished at the head
    assert book.committed == [] and len(batches) == 2
    _done(older, sent=1)
    assert batches.settle(len(batches), book.commit) is None
    assert book.committed == [[(0, 0), (0, 1)], [(0, 2), (0, 3)]]
    assert book.observed == [1, 2] and len(batches) == 0


def test_settle_to_make_room_commits_only_the_finished_head() -> None:
    book = Book()
    batches = InFlightBatches(2, book.observe)
    older, newer = _batch(0, range(0, 1)), _batch(1, range(0, 1))
    batches.add(older)
    batches.add(newer)
    _done(older)
    assert batches.settle(batches.limit - 1, book.commit) is None
    assert book.committed == [[(0, 0)]]
    assert list(batches) == [newer]  # still running: room for one more


def test_an_outage_in_the_oldest_batch_rewinds_every_batch_in_flight() -> None:
    book = Book()
    batches = InFlightBatches(3, book.observe)
    first, second, third = (
        _batch(0, range(10, 20)),
        _batch(1, range(5, 9)),
        _batch(0, range(20, 30)),
    )
    for batch in (first, second, third):
        batches.add(batch)
    _done(third)  # finished first, sent: replayed anyway, its rows are found sent
    _done(second)
    _failed(first)
    rewind = batches.settle(0, book.commit)
    assert rewind is not None
    assert rewind.first == {(MAIN, 0): 10, (MAIN, 1): 5}
    assert isinstance(rewind.error, DependencyUnavailableError)
    assert book.committed == [] and book.observed == [] and len(batches) == 0


def test_an_outage_in_a_later_batch_commits_the_ones_before_it_and_rewinds_the_rest() -> None:
    book = Book()
    batches = InFlightBatches(3, book.observe)
    first, second, third = _batch(0, range(0, 5)), _batch(0, range(5, 10)), _batch(1, range(0, 3))
    for batch in (first, second, third):
        batches.add(batch)
    _done(first)
    _failed(second)
    _done(third)
    rewind = batches.settle(0, book.commit)
    assert rewind is not None
    assert rewind.first == {(MAIN, 0): 5, (MAIN, 1): 0}
    assert book.committed == [[(0, o) for o in range(5)]]
    assert len(batches) == 0


def test_a_refused_commit_rewinds_that_batch_and_every_later_one() -> None:
    book = Book()
    batches = InFlightBatches(2, book.observe)
    first, second = _batch(0, range(0, 3)), _batch(0, range(3, 6))
    batches.add(first)
    batches.add(second)
    _done(first)
    _done(second)
    book.refuse = True
    rewind = batches.settle(0, book.commit)
    assert rewind is not None and rewind.first == {(MAIN, 0): 0}
    assert book.observed == []


def test_commit_all_before_a_revoke_stops_at_the_first_failure() -> None:
    book = Book()
    batches = InFlightBatches(3, book.observe)
    first, second, third = _batch(0, range(0, 2)), _batch(0, range(2, 4)), _batch(0, range(4, 6))
    for batch in (first, second, third):
        batches.add(batch)
    _done(first)
    _failed(second)
    _done(third)
    batches.commit_all(book.commit)
    assert book.committed == [[(0, 0), (0, 1)]]  # never the third past the failed second
    assert (first.committed, second.committed, third.committed) == (True, False, False)
    rewind = batches.settle(0, book.commit)  # the loop: first observed, not committed twice
    assert book.committed == [[(0, 0), (0, 1)]] and book.observed == [0]
    assert rewind is not None and rewind.first == {(MAIN, 0): 2}


def test_forget_drops_revoked_partitions_from_every_batch() -> None:
    book = Book()
    batches = InFlightBatches(2, book.observe)
    first, second = _batch(0, range(0, 2)), _batch(1, range(0, 2))
    first.handled.append(_incoming(1, 9))
    first.first[(MAIN, 1)] = 9
    batches.add(first)
    batches.add(second)
    batches.forget({(MAIN, 1)})
    assert [(i.partition, i.offset) for i in first.handled] == [(0, 0), (0, 1)]
    assert first.first == {(MAIN, 0): 0} and second.first == {} and second.handled == []


def test_the_dead_letter_limit_raises_after_its_batch_was_committed() -> None:
    book = Book()

    def observe(records: int, report: BatchReport) -> None:
        raise DeadLetterLimitError("too many dead letters")

    batches = InFlightBatches(2, observe)
    first, second = _batch(0, range(0, 1)), _batch(0, range(1, 2))
    batches.add(first)
    batches.add(second)
    _done(first)
    _done(second)
    with pytest.raises(DeadLetterLimitError):
        batches.settle(0, book.commit)
    assert book.committed == [[(0, 0)]]  # the later batch stays uncommitted: replayed
    assert list(batches) == [second]


def test_at_least_one_batch_is_in_flight() -> None:
    with pytest.raises(ValueError, match="at least one"):
        InFlightBatches(0, Book().observe)


def test_earliest_offsets_takes_the_smallest_first_offset_per_partition() -> None:
    in_flight = {("capi.events", 0): 100, ("capi.events", 1): 40}
    prepared = {("capi.events", 0): 180, ("capi.events.retry.1", 0): 7}
    assert earliest_offsets(in_flight, prepared) == {
        ("capi.events", 0): 100,
        ("capi.events", 1): 40,
        ("capi.events.retry.1", 0): 7,
    }


def test_earliest_offsets_of_nothing_is_empty() -> None:
    assert earliest_offsets() == {}
    assert earliest_offsets({}, {}) == {}


def test_an_event_already_in_flight_is_reported_as_overlapping() -> None:
    batches = InFlightBatches(2, Book().observe)
    tenant = uuid.uuid4()
    event, other = "order-1", "order-2"
    batch = _batch(0, range(0, 1))
    batch.keys = frozenset({(tenant, event)})
    batches.add(batch)
    assert batches.overlaps({(tenant, event), (tenant, other)})
    assert not batches.overlaps({(tenant, other)})


def test_the_in_flight_limit_comes_from_the_settings() -> None:
    settings = CapiSettings(_env_file=None, worker_max_inflight_batches=2)
    assert WorkerConfig.from_settings(settings).max_inflight_batches == 2
    assert (
        WorkerConfig().max_inflight_batches
        == CapiSettings.model_fields["worker_max_inflight_batches"].default
    )


def test_the_send_concurrency_comes_from_the_settings() -> None:
    settings = CapiSettings(_env_file=None, worker_max_concurrent_sends=5)
    assert WorkerConfig.from_settings(settings).send_concurrency == 5
    assert (
        WorkerConfig().send_concurrency
        == CapiSettings.model_fields["worker_max_concurrent_sends"].default
    )
