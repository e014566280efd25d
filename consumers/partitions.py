"""Partition control of the worker: due-time pauses, outage pauses, rebalance bookkeeping.

A tier partition whose next record is not due is paused and seeked back to that record,
then resumed when due (checked every loop iteration, never slept on). During a dependency
outage every assigned partition is paused; the loop keeps polling to stay in the group.
Revoked or lost partitions are forgotten: their next owner re-reads and re-checks them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaException, Message, TopicPartition

from capi_stream.kafka.consumer import Consumer
from capi_stream.kafka.message import PartitionKey
from consumers.delays import PauseBook

logger = logging.getLogger(__name__)


def key_of(tp: TopicPartition) -> PartitionKey:
    return (tp.topic, tp.partition)


class PartitionControl:
    """Pauses, resumes and seeks partitions of one consumer; owns the ``PauseBook``."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.book = PauseBook()
        self.in_outage = False

    def defer(self, key: PartitionKey, offset: int, due_ms: int) -> None:
        """Pause ``key`` and rewind it to ``offset`` until ``due_ms``."""
        tp = TopicPartition(key[0], key[1], offset)
        self.consumer.pause([tp])
        self._seek(tp)
        self.book.pause(key, offset, due_ms)
        logger.debug("partition waits", extra={"record": f"{key[0]}[{key[1]}]@{offset}"})

    def resume_due(self, now_ms: int) -> None:
        due = self.book.take_due(now_ms)
        if due and not self.in_outage:
            self._resume(due)

    def rewind(self, first_offsets: Mapping[PartitionKey, int]) -> None:
        """Seek every partition back to its first unhandled offset (the batch is replayed)."""
        for key, offset in first_offsets.items():
            self._seek(TopicPartition(key[0], key[1], offset))

    def enter_outage(self) -> None:
        self.in_outage = True
        self.pause_all()

    def pause_all(self) -> None:
        assignment = self.consumer.assignment()
        if assignment:
            self.consumer.pause(assignment)

    def hold(self, message: Message) -> None:
        """Put back a record polled during an outage (from a newly assigned partition)."""
        tp = TopicPartition(message.topic() or "", message.partition() or 0, message.offset() or 0)
        self.consumer.pause([tp])
        self._seek(tp)

    def leave_outage(self) -> None:
        self.in_outage = False
        waiting = self.book.keys()
        active = [key_of(tp) for tp in self.consumer.assignment() if key_of(tp) not in waiting]
        self._resume(active)

    def resume_fresh(self, keys: set[PartitionKey]) -> None:
        """Resume newly assigned partitions unless they wait for a due time or an outage."""
        if not self.in_outage:
            self._resume(keys - self.book.keys())

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        self.book.drop(key_of(tp) for tp in partitions)

    def _resume(self, keys: Iterable[PartitionKey]) -> None:
        assigned = {key_of(tp) for tp in self.consumer.assignment()}
        tps = [TopicPartition(t, p) for t, p in keys if (t, p) in assigned]
        if tps:
            self.consumer.resume(tps)

    def _seek(self, tp: TopicPartition) -> None:
        try:
            self.consumer.seek(tp)
        except KafkaException as exc:  # revoked meanwhile: the next owner re-reads it
            logger.warning(
                "seek failed",
                extra={"record": f"{tp.topic}[{tp.partition}]@{tp.offset}", "error": str(exc)},
            )
