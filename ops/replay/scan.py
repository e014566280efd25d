"""Where a replay starts and stops reading: time range -> offsets, then a bounded read.

Start: ``ops.export.find_start_offsets`` (Kafka's timestamp lookup, kept only when the
record just before the answer is older than the range start; otherwise, as on the embedded
broker whose lookup always answers 0, the partition is read from the beginning).

Stop: each partition ends at its first record stamped at or after the range end (the end is
excluded: ``[start_ms, end_ms)``), or at partition EOF. This assumes record timestamps
grow with offsets within a partition, which holds for CreateTime stamped at publish time
(our publisher) and for LogAppendTime.

Size: the number of records in range is known only when the broker's timestamp lookup
answers (and passes the same check) for the range end too; otherwise it stays unknown and
the progress bar is indeterminate. The log end comes from a Fetch, never from ListOffsets.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaException, Message
from confluent_kafka import TopicPartition as KafkaTopicPartition

from capi_stream.kafka.consumer import Consumer
from capi_stream.kafka.scan import OFFSET_BEGINNING, PartitionKey, probe_watermarks, scan_partitions
from ops.export import find_start_offsets

__all__ = ["RangePlan", "plan_range", "read_range"]


@dataclass(frozen=True, slots=True)
class RangePlan:
    """Start offsets per partition, whether the timestamp lookup was trusted, and the
    number of records in range when the offsets tell it (``None``: unknown)."""

    starts: dict[PartitionKey, int]
    lookup_used: bool
    expected: int | None


def plan_range(
    consumer: Consumer, topic: str, partitions: list[int], start_ms: int, end_ms: int
) -> RangePlan:
    """Start offsets for ``[start_ms, end_ms)`` and, where knowable, the range's size."""
    offsets, trusted = find_start_offsets(consumer, topic, partitions, start_ms)
    starts = {(topic, p): offset for p, offset in offsets.items()}
    expected = _count_in_range(consumer, topic, starts, end_ms) if trusted else None
    return RangePlan(starts, trusted, expected)


def _count_in_range(
    consumer: Consumer, topic: str, starts: Mapping[PartitionKey, int], end_ms: int
) -> int | None:
    """Sum of (end - start) per partition, or None as soon as one end is not verifiable."""
    try:
        found = consumer.offsets_for_times(
            [KafkaTopicPartition(t, p, end_ms) for t, p in starts], timeout=10.0
        )
    except KafkaException:
        return None
    ends = {(topic, tp.partition): tp.offset for tp in found if tp.error is None}
    if len(ends) != len(starts) or any(offset == 0 for offset in ends.values()):
        return None  # 0 is also the embedded broker's constant answer: not evidence
    marks = probe_watermarks(consumer, starts)
    probes = {key: offset - 1 for key, offset in ends.items() if offset > 0}
    before = {
        (m.topic(), m.partition()): m.timestamp()[1]
        for m in scan_partitions(consumer, probes, stop_after_first=True)
    }
    total = 0
    for key, end in ends.items():
        low, high = marks.get(key, (0, 0))
        if end < 0:  # no record after the range end: read to the log end
            end = high
        elif not 0 <= before.get(key, end_ms) < end_ms:
            return None
        start = starts[key] if starts[key] != OFFSET_BEGINNING else low
        total += max(0, end - start)
    return total


def read_range(
    consumer: Consumer, starts: Mapping[PartitionKey, int], end_ms: int, idle_timeout: float = 20.0
) -> Generator[Message, None, None]:
    """Yield records from each partition's start up to and including its first record
    stamped at or after ``end_ms`` (the caller sees it and filters it out), or to EOF.

    The consumer must have ``enable.partition.eof`` set (``build_scan_consumer`` does).

    Raises:
        DependencyUnavailableError: no progress for ``idle_timeout`` seconds.
    """
    return scan_partitions(
        consumer,
        starts,
        idle_timeout=idle_timeout,
        done_after=lambda message: message.timestamp()[1] >= end_ms,
    )
