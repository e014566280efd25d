"""The worker's rebalance bookkeeping (``consumers.rebalance``) with a fake of its hooks."""

from __future__ import annotations

from typing import cast

from confluent_kafka import TopicPartition

from capi_stream.kafka.consumer import Consumer
from capi_stream.kafka.message import PartitionKey
from consumers.metrics import WorkerMetrics
from consumers.rebalance import Rebalance


class FakeHooks:
    """Records what the rebalance asked the loop to do, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def commit_inflight(self, consumer: Consumer) -> None:
        self.calls.append(("commit", None))

    def forget_inflight(self, gone: set[PartitionKey]) -> None:
        self.calls.append(("forget", frozenset(gone)))

    def drop_partitions(self, partitions: list[TopicPartition], gone: set[PartitionKey]) -> None:
        self.calls.append(("drop", frozenset(gone)))


# The callbacks only pass the consumer on to the hooks: no client is needed here.
NO_CONSUMER = cast(Consumer, object())


def tps(*partitions: int, topic: str = "capi.events") -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in partitions]


def assigned_gauge(metrics: WorkerMetrics) -> float:
    return next(s.value for m in metrics.assigned.collect() for s in m.samples)


def test_assigned_partitions_are_counted_and_fresh_once() -> None:
    metrics = WorkerMetrics()
    rebalance = Rebalance(metrics, FakeHooks())
    rebalance.on_assign(NO_CONSUMER, tps(0, 1))
    assert rebalance.assigned == {("capi.events", 0), ("capi.events", 1)}
    assert assigned_gauge(metrics) == 2
    assert rebalance.take_fresh() == {("capi.events", 0), ("capi.events", 1)}
    assert rebalance.take_fresh() == set()


def test_a_revoke_commits_in_flight_before_it_forgets_the_partitions() -> None:
    hooks = FakeHooks()
    metrics = WorkerMetrics()
    rebalance = Rebalance(metrics, hooks)
    rebalance.on_assign(NO_CONSUMER, tps(0, 1))
    rebalance.lag_labels.add(("capi.events", 1))
    metrics.lag.labels("capi.events", "1").set(5)
    rebalance.on_revoke(NO_CONSUMER, tps(1))
    gone = frozenset({("capi.events", 1)})
    assert hooks.calls == [("commit", None), ("forget", gone), ("drop", gone)]
    assert rebalance.assigned == {("capi.events", 0)}
    assert rebalance.lag_labels == set()
    assert assigned_gauge(metrics) == 1
    assert [s for m in metrics.lag.collect() for s in m.samples] == []


def test_lost_partitions_leave_the_batch_in_flight_before_anything_is_committed() -> None:
    hooks = FakeHooks()
    rebalance = Rebalance(WorkerMetrics(), hooks)
    rebalance.on_assign(NO_CONSUMER, tps(0, 1))
    rebalance.on_lost(NO_CONSUMER, tps(0, 1))
    gone = frozenset({("capi.events", 0), ("capi.events", 1)})
    assert hooks.calls[:2] == [("forget", gone), ("commit", None)]
    assert rebalance.assigned == set()


def test_a_replaced_consumer_starts_with_nothing_assigned() -> None:
    metrics = WorkerMetrics()
    rebalance = Rebalance(metrics, FakeHooks())
    rebalance.on_assign(NO_CONSUMER, tps(0, 1, 2))
    rebalance.reset()
    assert rebalance.assigned == set()
    assert rebalance.take_fresh() == set()
    assert assigned_gauge(metrics) == 0
