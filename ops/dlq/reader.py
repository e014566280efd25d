"""Reading dead letters: list them with filters, find one by reference or event id, decode.

Every read is a bounded ``assign()`` scan of the dead-letter topic from its beginning; no
consumer group is joined. Redriving lives in ``ops.dlq.redrive``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from capi_stream.avro.codec import EventCodec
from capi_stream.errors import DecodeError
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.scan import (
    OFFSET_BEGINNING,
    build_scan_consumer,
    list_partitions,
    log_end,
    scan_partitions,
)
from ops.dlq.records import (
    DeadLetter,
    DeadLetterFilter,
    Header,
    RecordRef,
    build_dead_letter_headers,
    parse_dead_letter,
    parse_duration,
    parse_ref,
)
from ops.dlq.redrive import RedriveOptions, RedriveReport, redrive_dead_letters
from ops.export import hash_user

__all__ = [
    "DeadLetter",
    "DeadLetterFilter",
    "DeadLetterSummary",
    "Header",
    "RecordRef",
    "RedriveOptions",
    "RedriveReport",
    "build_dead_letter_headers",
    "decode_dead_letter",
    "find_dead_letters",
    "iter_dead_letters",
    "list_dead_letters",
    "now_ms",
    "parse_duration",
    "parse_ref",
    "redrive_dead_letters",
    "summarize_dead_letters",
]


def now_ms() -> int:
    return int(time.time() * 1000)


def iter_dead_letters(kafka: KafkaConfig, topic: str) -> Iterator[DeadLetter]:
    """Every record of the dead-letter topic, oldest offset first per partition."""
    consumer = build_scan_consumer(kafka)
    try:
        starts = {(topic, p): OFFSET_BEGINNING for p in list_partitions(consumer, topic)}
        with closing(scan_partitions(consumer, starts)) as messages:
            for message in messages:
                yield parse_dead_letter(message)
    finally:
        consumer.close()


def list_dead_letters(
    kafka: KafkaConfig, topic: str, selection: DeadLetterFilter, now: int | None = None
) -> list[DeadLetter]:
    """The dead letters matching ``selection``, oldest first."""
    moment = now_ms() if now is None else now
    found = [d for d in iter_dead_letters(kafka, topic) if selection.matches(d, moment)]
    return sorted(found, key=lambda d: (d.timestamp_ms, d.ref))


def find_dead_letters(kafka: KafkaConfig, topic: str, target: str) -> list[DeadLetter]:
    """Dead letters named by ``TOPIC:PARTITION:OFFSET`` or by CAPI event id."""
    ref = parse_ref(target)
    if ref is None:
        return [d for d in iter_dead_letters(kafka, topic) if d.event_id == target]
    consumer = build_scan_consumer(kafka)
    try:
        if ref.partition not in list_partitions(consumer, ref.topic):
            return []
        if ref.offset >= log_end(consumer, ref.topic, ref.partition):
            return []
        starts = {(ref.topic, ref.partition): ref.offset}
        with closing(scan_partitions(consumer, starts, stop_after_first=True)) as messages:
            for message in messages:
                letter = parse_dead_letter(message)
                return [letter] if letter.ref == ref else []
    finally:
        consumer.close()
    return []


def decode_dead_letter(codec: EventCodec, letter: DeadLetter) -> dict[str, Any] | None:
    """The event as JSON-ready data, user fields hashed (again, to be sure); None if the
    value is not a decodable event (the worker then kept the original bytes)."""
    try:
        event = codec.decode(letter.value)
    except DecodeError:
        return None
    data: dict[str, Any] = hash_user(event).model_dump(mode="json")
    return data


@dataclass(frozen=True, slots=True)
class DeadLetterSummary:
    """Size and age of the dead-letter topic."""

    count: int
    oldest_ms: int | None
    newest_ms: int | None
    by_error_class: dict[str, int]
    newest_reason: str | None = None  # the newest dead letter's ``Class code: message``

    def to_dict(self, now: int) -> dict[str, Any]:
        oldest_age = None if self.oldest_ms is None else (now - self.oldest_ms) / 1000
        return {
            "count": self.count,
            "oldest_timestamp_ms": self.oldest_ms,
            "newest_timestamp_ms": self.newest_ms,
            "oldest_age_seconds": oldest_age,
            "by_error_class": self.by_error_class,
            "newest_reason": self.newest_reason,
        }


def summarize_dead_letters(kafka: KafkaConfig, topic: str) -> DeadLetterSummary:
    """Count the dead letters and find the oldest by record timestamp (a full scan)."""
    count = 0
    oldest: int | None = None
    newest: int | None = None
    by_class: dict[str, int] = {}
    newest_reason: str | None = None
    for letter in iter_dead_letters(kafka, topic):
        count += 1
        stamp = letter.timestamp_ms
        oldest = stamp if oldest is None else min(oldest, stamp)
        if newest is None or stamp >= newest:
            newest, newest_reason = stamp, letter.reason
        error_class = letter.header(Header.ERROR_CLASS) or "unknown"
        by_class[error_class] = by_class.get(error_class, 0) + 1
    return DeadLetterSummary(count, oldest, newest, dict(sorted(by_class.items())), newest_reason)
