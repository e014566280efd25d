"""Export a time range of a topic to an Avro object container file, user data hashed.

The range applies to record timestamps, ``[start, end)``. Where to start reading: Kafka's
timestamp lookup (``offsets_for_times``) is tried first and *verified* (the record just
before the returned offset must be older than the range start); a lookup that fails the
check, such as the embedded broker's, which always answers 0, falls back to the beginning.
Either way every partition is read to its end and filtered on the record timestamp, since
producer timestamps need not be in offset order.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import KafkaException, Message
from confluent_kafka import TopicPartition as KafkaTopicPartition

from capi_stream.avro.codec import EventCodec, event_to_record, load_schema
from capi_stream.errors import DecodeError
from capi_stream.event import ConversionEvent
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.consumer import Consumer
from capi_stream.kafka.scan import (
    OFFSET_BEGINNING,
    PartitionKey,
    build_scan_consumer,
    list_partitions,
    scan_partitions,
)
from consumers.pipeline.redact import hash_identity

__all__ = ["ExportRequest", "ExportSummary", "export_events", "find_start_offsets", "hash_user"]


def hash_user(event: ConversionEvent, default_country: str | None = None) -> ConversionEvent:
    """The event with every hashed ``user_data`` field as Meta's SHA-256 hex.

    The worker's redaction (``consumers.pipeline.redact``, built on ``meta_capi.hashing``): values
    already hashed pass through, unusable ones are dropped; ``default_country`` (the
    tenant's) reads national phone numbers.
    """
    return hash_identity(event, default_country)


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export: a topic, a ``[start_ms, end_ms)`` range and optional filters."""

    topic: str
    start_ms: int
    end_ms: int
    out: Path
    tenant_id: uuid.UUID | None = None
    event_name: str | None = None


@dataclass(slots=True)
class ExportSummary:
    """What an export read and wrote."""

    scanned: int = 0
    written: int = 0
    undecodable: int = 0
    start_offsets: dict[int, int] = field(default_factory=dict)
    lookup_used: bool = False


def find_start_offsets(
    consumer: Consumer, topic: str, partitions: list[int], start_ms: int, timeout: float = 10.0
) -> tuple[dict[int, int], bool]:
    """Per-partition start offsets for ``start_ms``, and whether the lookup was trusted.

    Tries ``offsets_for_times``; keeps an answer only if the record before it is older than
    ``start_ms``. Otherwise (including the embedded broker's constant 0) starts at 0.
    """
    fallback = dict.fromkeys(partitions, OFFSET_BEGINNING)
    try:
        found = consumer.offsets_for_times(
            [KafkaTopicPartition(topic, p, start_ms) for p in partitions], timeout=timeout
        )
    except KafkaException:
        return fallback, False
    candidates = {tp.partition: tp.offset for tp in found if tp.error is None and tp.offset > 0}
    if not candidates:
        return fallback, False
    probes = {(topic, p): offset - 1 for p, offset in candidates.items()}
    before = {
        m.partition(): m.timestamp()[1]
        for m in scan_partitions(consumer, probes, stop_after_first=True)
    }
    starts = dict(fallback)
    trusted = False
    for partition, offset in candidates.items():
        timestamp = before.get(partition)
        if timestamp is not None and 0 <= timestamp < start_ms:
            starts[partition] = offset
            trusted = True
    return starts, trusted


def export_events(
    kafka: KafkaConfig,
    codec: EventCodec,
    request: ExportRequest,
    default_countries: Mapping[uuid.UUID, str | None] | None = None,
) -> ExportSummary:
    """Write the matching events of ``request.topic`` to ``request.out``; returns a summary.

    The file is written under a temporary name and renamed when complete, so a failed
    export never leaves a truncated file behind.

    Raises:
        DependencyUnavailableError: the topic is missing or the broker stops answering.
    """
    countries = default_countries or {}
    summary = ExportSummary()
    consumer = build_scan_consumer(kafka)
    try:
        partitions = list_partitions(consumer, request.topic)
        offsets, summary.lookup_used = find_start_offsets(
            consumer, request.topic, partitions, request.start_ms
        )
        summary.start_offsets = offsets
        starts: dict[PartitionKey, int] = {(request.topic, p): o for p, o in offsets.items()}
        request.out.parent.mkdir(parents=True, exist_ok=True)
        partial = request.out.with_name(request.out.name + ".partial")
        schema = fastavro.parse_schema(load_schema())
        try:
            with closing(scan_partitions(consumer, starts)) as messages, partial.open("wb") as out:
                records = _matching_records(messages, codec, request, countries, summary)
                fastavro.writer(out, schema, records, codec="deflate")
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, request.out)
    finally:
        consumer.close()
    return summary


def _matching_records(
    messages: Iterator[Message],
    codec: EventCodec,
    request: ExportRequest,
    countries: Mapping[uuid.UUID, str | None],
    summary: ExportSummary,
) -> Iterator[dict[str, Any]]:
    for message in messages:
        summary.scanned += 1
        timestamp = message.timestamp()[1]
        if not request.start_ms <= timestamp < request.end_ms:
            continue
        try:
            event = codec.decode(message.value() or b"")
        except DecodeError:
            summary.undecodable += 1
            continue
        if request.tenant_id is not None and event.tenant_id != request.tenant_id:
            continue
        if request.event_name is not None and event.event_name != request.event_name:
            continue
        summary.written += 1
        yield event_to_record(hash_user(event, countries.get(event.tenant_id)))
