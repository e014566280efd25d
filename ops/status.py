"""What ``capi status`` reports: delivery counts, match quality and consumer-group lag.

Lag = log end - committed offset, per partition. The committed offsets come from
``AdminClient.list_consumer_group_offsets`` (an OffsetFetch; it never joins or disturbs the
group). The log end comes from a Fetch: one record (or the partition EOF) is read per
partition with ``assign()`` and ``get_watermark_offsets(tp, cached=True)`` gives the high
watermark of that Fetch response. ListOffsets LATEST is not used: the embedded broker
answers it wrongly. A partition without a committed offset counts from its low watermark.
That same Fetch returns the first record the group has not handled yet: its timestamp is
the age of the oldest record waiting in the partition (for a retry tier: when it was
forwarded there), at no extra cost.

The database figures (counts, last errors, match quality) are queried by
``storage.reports``; they are re-exported here under the names ``capi status`` uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient

from capi_stream.errors import DependencyUnavailableError
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.scan import (
    OFFSET_BEGINNING,
    PartitionKey,
    build_scan_consumer,
    list_partitions,
    scan_partitions,
)
from storage.reports import (
    MATCH_KEY_LABELS,
    MATCH_KEYS,
    EventCounts,
    LastError,
    MatchQuality,
    query_event_counts,
    query_last_errors,
    query_match_quality,
)

__all__ = [
    "MATCH_KEYS",
    "MATCH_KEY_LABELS",
    "EventCounts",
    "LastError",
    "MatchQuality",
    "PartitionLag",
    "measure_lag",
    "query_event_counts",
    "query_last_errors",
    "query_match_quality",
]


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition's lag; ``oldest_waiting_ms`` is the record timestamp of the first
    record not handled yet (None when nothing waits)."""

    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int
    oldest_waiting_ms: int | None = None


def _committed_offsets(
    kafka: KafkaConfig, group: str, keys: list[PartitionKey], timeout: float
) -> dict[PartitionKey, int]:
    admin = AdminClient(kafka.admin_config())
    request = ConsumerGroupTopicPartitions(group, [KafkaTopicPartition(t, p) for t, p in keys])
    try:
        futures = admin.list_consumer_group_offsets([request], request_timeout=timeout)
        answer = futures[group].result(timeout)
    except KafkaException as exc:
        raise DependencyUnavailableError(f"cannot read offsets of group {group}: {exc}") from exc
    return {
        (tp.topic, tp.partition): tp.offset
        for tp in answer.topic_partitions or []
        if tp.error is None and tp.offset >= 0
    }


def measure_lag(
    kafka: KafkaConfig, group: str, topics: tuple[str, ...], timeout: float = 15.0
) -> list[PartitionLag]:
    """Lag of ``group`` on every partition of ``topics`` (see the module docstring)."""
    consumer = build_scan_consumer(kafka)
    try:
        keys = [(topic, p) for topic in topics for p in list_partitions(consumer, topic)]
        committed = _committed_offsets(kafka, group, keys, timeout)
        starts = {key: committed.get(key, OFFSET_BEGINNING) for key in keys}
        marks: dict[PartitionKey, tuple[int, int]] = {}
        first: dict[PartitionKey, int] = {}  # the first record waiting: its timestamp
        for message in scan_partitions(
            consumer, starts, idle_timeout=timeout, stop_after_first=True, watermarks=marks
        ):
            first[(message.topic() or "", message.partition() or 0)] = message.timestamp()[1]
    finally:
        consumer.close()
    lags = []
    for key in keys:
        low, high = marks[key]
        done = committed.get(key)
        lag = max(0, high - (done if done is not None else low))
        oldest = first.get(key) if lag else None
        lags.append(PartitionLag(key[0], key[1], done, high, lag, oldest))
    return lags
