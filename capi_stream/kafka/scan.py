"""Bounded reads of a topic with ``assign()``: from chosen offsets to the end of each partition.

Used by the dead-letter tools, the exporter, replays and ``capi status``. No group is joined,
so nothing here can disturb the live worker group.

How the end of a partition is found (portable to Apache Kafka and right on the embedded
broker, whose ListOffsets LATEST answer is wrong):

1. ``enable.partition.eof=true`` makes librdkafka emit ``_PARTITION_EOF`` once a fetch reached
   the log end (the embedded broker supports this; measured).
2. As a fallback, a partition is done when a ``consume`` returns nothing and its position has
   reached the high watermark of the last Fetch response (``get_watermark_offsets(tp,
   cached=True)``), never the ListOffsets one.

Records produced after a partition was found complete are not read: a scan is a snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as KafkaTopicPartition

from capi_stream.errors import DependencyUnavailableError
from capi_stream.kafka.consumer import Consumer, build_scan_consumer
from capi_stream.kafka.message import PartitionKey

__all__ = [
    "OFFSET_BEGINNING",
    "PartitionKey",
    "build_scan_consumer",
    "list_partitions",
    "log_end",
    "probe_watermarks",
    "scan_partitions",
]

_BATCH = 500
_POLL_SECONDS = 0.2


def list_partitions(consumer: Consumer, topic: str, timeout: float = 10.0) -> list[int]:
    """The partition ids of ``topic``.

    Raises:
        DependencyUnavailableError: the broker did not answer or the topic does not exist.
    """
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise DependencyUnavailableError(f"cannot read metadata of {topic}: {exc}") from exc
    described = metadata.topics.get(topic)
    if described is None or described.error is not None or not described.partitions:
        raise DependencyUnavailableError(f"topic {topic} does not exist")
    return sorted(described.partitions)


def scan_partitions(
    consumer: Consumer,
    starts: Mapping[PartitionKey, int],
    *,
    idle_timeout: float = 20.0,
    stop_after_first: bool = False,
    done_after: Callable[[Message], bool] | None = None,
    watermarks: dict[PartitionKey, tuple[int, int]] | None = None,
) -> Generator[Message, None, None]:
    """Yield every record from each partition's start offset up to its end, then stop.

    ``starts`` maps (topic, partition) to an offset or ``OFFSET_BEGINNING``. A partition is
    also done right after a record for which ``done_after`` is true (a replay's first record
    past its range); ``stop_after_first`` means after one record (to probe watermarks).
    ``watermarks``, when given, receives each partition's Fetch-derived (low, high) as it
    completes.

    Raises:
        DependencyUnavailableError: no progress for ``idle_timeout`` seconds (broker down, or
            a start offset beyond the log end, which the embedded broker never reports).
    """
    pending = set(starts)
    if not pending:
        return
    consumer.incremental_assign(
        [KafkaTopicPartition(t, p, offset) for (t, p), offset in starts.items()]
    )
    last_progress = time.monotonic()
    try:
        while pending:
            messages = consumer.consume(_BATCH, _POLL_SECONDS)
            if messages:
                last_progress = time.monotonic()
            for message in messages:
                key = (message.topic(), message.partition())
                if key not in pending:
                    continue  # a partition already complete: keep the snapshot
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        _finish(consumer, pending, key, watermarks)
                        continue
                    raise DependencyUnavailableError(f"reading {key[0]}[{key[1]}]: {error}")
                yield message
                if stop_after_first or (done_after is not None and done_after(message)):
                    _finish(consumer, pending, key, watermarks)
            if not messages:
                for key in [k for k in pending if _at_cached_end(consumer, k)]:
                    _finish(consumer, pending, key, watermarks)
                if pending and time.monotonic() - last_progress > idle_timeout:
                    names = ", ".join(f"{t}[{p}]" for t, p in sorted(pending))
                    raise DependencyUnavailableError(
                        f"no progress for {idle_timeout}s reading {names}"
                    )
    finally:
        if pending:
            consumer.incremental_unassign([KafkaTopicPartition(*key) for key in pending])


def probe_watermarks(
    consumer: Consumer, starts: Mapping[PartitionKey, int], idle_timeout: float = 20.0
) -> dict[PartitionKey, tuple[int, int]]:
    """(low, high) watermarks per partition, taken from a real Fetch response.

    Fetches at most one record per partition from its start offset, then reads the
    Fetch-derived watermarks (``cached=True``); the ListOffsets lookup is never used.
    """
    marks: dict[PartitionKey, tuple[int, int]] = {}
    scan = scan_partitions(
        consumer, starts, idle_timeout=idle_timeout, stop_after_first=True, watermarks=marks
    )
    for _ in scan:
        pass
    return marks


def log_end(consumer: Consumer, topic: str, partition: int) -> int:
    """The partition's log end offset (from a Fetch). Check it before reading at an offset:
    the embedded broker never reports an offset beyond the end, the read just waits."""
    return probe_watermarks(consumer, {(topic, partition): OFFSET_BEGINNING})[(topic, partition)][1]


def _at_cached_end(consumer: Consumer, key: PartitionKey) -> bool:
    tp = KafkaTopicPartition(*key)
    _low, high = consumer.get_watermark_offsets(tp, cached=True)
    if high < 0:
        return False
    positions: list[Any] = consumer.position([tp])
    position = positions[0].offset
    return bool(position >= 0 and position >= high)


def _finish(
    consumer: Consumer,
    pending: set[PartitionKey],
    key: PartitionKey,
    watermarks: dict[PartitionKey, tuple[int, int]] | None,
) -> None:
    pending.discard(key)
    if watermarks is not None:
        low, high = consumer.get_watermark_offsets(KafkaTopicPartition(*key), cached=True)
        watermarks[key] = (max(low, 0), max(high, 0))
    consumer.incremental_unassign([KafkaTopicPartition(*key)])
