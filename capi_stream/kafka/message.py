"""A Protocol for consumed records: ``confluent_kafka.Message`` cannot be built in tests."""

from __future__ import annotations

from typing import Protocol

# (topic, partition): how positions, pauses and lags are keyed.
PartitionKey = tuple[str, int]


class KafkaRecord(Protocol):
    """The parts of a consumed record the pipeline reads."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> str | bytes | None: ...
    def value(self) -> str | bytes | None: ...
    def headers(self) -> list[tuple[str, str | bytes | None]] | None: ...
    def timestamp(self) -> tuple[int, int]: ...


def describe_record(record: KafkaRecord) -> str:
    """``topic[partition]@offset``: how every per-message log line names its record."""
    return f"{record.topic()}[{record.partition()}]@{record.offset()}"
