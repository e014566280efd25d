"""Rebalance bookkeeping of the worker: which partitions are ours, which are fresh.

The callbacks run inside ``consume``/``poll`` on the loop's thread. On a revoke the batch in
flight is committed first (while the partitions are still ours), then everything the worker
holds about them is dropped: in-flight offsets, pauses, half-collected records, lag gauges.
A lost partition is never committed: it may be another member's already.
"""

from __future__ import annotations

import logging
from typing import Protocol

from confluent_kafka import TopicPartition

from capi_stream.kafka.consumer import Consumer
from capi_stream.kafka.message import PartitionKey
from consumers.metrics import WorkerMetrics
from consumers.partitions import key_of

logger = logging.getLogger(__name__)

__all__ = ["Rebalance", "RebalanceHooks"]


class RebalanceHooks(Protocol):
    """What the loop does for a rebalance (the ``Worker`` implements it)."""

    def commit_inflight(self, consumer: Consumer) -> None:
        """Commit the batch in flight now, if it finished; failures wait for the loop."""

    def forget_inflight(self, gone: set[PartitionKey]) -> None:
        """Drop ``gone`` from the batch in flight: neither committed nor rewound by us."""

    def drop_partitions(self, partitions: list[TopicPartition], gone: set[PartitionKey]) -> None:
        """Forget pauses and not-yet-processed records of ``gone``."""


class Rebalance:
    """The assigned set (read by readiness from another thread: never the consumer itself),
    the partitions assigned since the loop last looked, and the lag gauges' labels."""

    def __init__(self, metrics: WorkerMetrics, hooks: RebalanceHooks) -> None:
        self.metrics, self.hooks = metrics, hooks
        self.assigned: set[PartitionKey] = set()
        self.fresh: set[PartitionKey] = set()
        self.lag_labels: set[PartitionKey] = set()

    def take_fresh(self) -> set[PartitionKey]:
        """Partitions assigned since the last call (they must not inherit an old pause)."""
        fresh, self.fresh = self.fresh, set()
        return fresh

    def reset(self) -> None:
        """The consumer was replaced: the old member's partitions are gone with it."""
        self.assigned.clear()
        self.fresh.clear()
        self.metrics.assigned.set(0)

    def on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.info(
            "assigned", extra={"partitions": [f"{p.topic}[{p.partition}]" for p in partitions]}
        )
        self.assigned |= {key_of(tp) for tp in partitions}
        self.fresh |= {key_of(tp) for tp in partitions}
        self.metrics.assigned.set(len(self.assigned))

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = {key_of(tp) for tp in partitions}
        logger.info("revoked", extra={"partitions": [f"{t}[{p}]" for t, p in sorted(gone)]})
        self.hooks.commit_inflight(consumer)  # while these partitions are still ours
        self.hooks.forget_inflight(gone)  # committed or not: no longer ours to commit or rewind
        # Records of revoked partitions not yet processed belong to their next owner.
        self.hooks.drop_partitions(partitions, gone)
        for topic, partition in gone & self.lag_labels:
            self.metrics.lag.remove(topic, str(partition))
        self.lag_labels -= gone
        self.assigned -= gone
        self.metrics.assigned.set(len(self.assigned))

    def on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.warning("partitions lost")
        # Lost, not revoked: they may be another member's already, or (a broker restarted
        # with its storage) a new log where an old offset points past the end. Never commit
        # or seek them for the batch in flight; their next owner re-reads from the commits.
        self.hooks.forget_inflight({key_of(tp) for tp in partitions})
        self.on_revoke(consumer, partitions)
