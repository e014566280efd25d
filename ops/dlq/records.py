"""Dead letters as plain values: their headers, a reference to them, and the filters over them.

The worker writes these headers on every retry/dead-letter hop, replacing them each time;
values are UTF-8 strings. The redrive tool adds ``capi-redrive-count`` and
``capi-redriven-by`` when it sends a dead letter back to the main topic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from consumers import headers as hop

__all__ = [
    "DeadLetter",
    "DeadLetterFilter",
    "Header",
    "RecordRef",
    "build_dead_letter_headers",
    "parse_dead_letter",
    "parse_duration",
    "parse_ref",
]


class Header:
    """Names of the headers on retry, dead-letter and redriven records.

    The hop headers are the worker's (``consumers.headers``); the last two are the redrive
    tool's, which the worker passes through unchanged.
    """

    ATTEMPT = hop.ATTEMPT
    DUE_MS = hop.DUE_MS
    ORIGINAL_TOPIC = hop.ORIGINAL_TOPIC
    ORIGINAL_PARTITION = hop.ORIGINAL_PARTITION
    ORIGINAL_OFFSET = hop.ORIGINAL_OFFSET
    ORIGINAL_TIMESTAMP = hop.ORIGINAL_TIMESTAMP
    ERROR_CLASS = hop.ERROR_CLASS
    ERROR_CODE = hop.ERROR_CODE
    ERROR_SUBCODE = hop.ERROR_SUBCODE
    ERROR_MESSAGE = hop.ERROR_MESSAGE
    TENANT_ID = hop.TENANT_ID
    EVENT_ID = hop.EVENT_ID
    EVENT_NAME = hop.EVENT_NAME
    FAILED_AT = hop.FAILED_AT
    REDRIVE_COUNT = "capi-redrive-count"
    REDRIVEN_BY = "capi-redriven-by"


@dataclass(frozen=True, slots=True, order=True)
class RecordRef:
    """Where a record sits: ``TOPIC:PARTITION:OFFSET``."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


def parse_ref(text: str) -> RecordRef | None:
    """``TOPIC:PARTITION:OFFSET`` as a reference, or None when ``text`` is not one."""
    parts = text.rsplit(":", 2)
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return RecordRef(parts[0], int(parts[1]), int(parts[2]))


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-letter record: its place, timestamp, key, value and decoded headers."""

    ref: RecordRef
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: Mapping[str, str]

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def tenant_id(self) -> str | None:
        return self.headers.get(Header.TENANT_ID)

    @property
    def event_id(self) -> str | None:
        return self.headers.get(Header.EVENT_ID)

    @property
    def event_name(self) -> str | None:
        return self.headers.get(Header.EVENT_NAME)

    @property
    def error_code(self) -> str | None:
        return self.headers.get(Header.ERROR_CODE)

    @property
    def attempts(self) -> int | None:
        return _int(self.headers.get(Header.ATTEMPT))

    @property
    def redrive_count(self) -> int:
        return _int(self.headers.get(Header.REDRIVE_COUNT)) or 0

    @property
    def origin(self) -> str:
        topic = self.headers.get(Header.ORIGINAL_TOPIC, "?")
        partition = self.headers.get(Header.ORIGINAL_PARTITION, "?")
        offset = self.headers.get(Header.ORIGINAL_OFFSET, "?")
        return f"{topic}:{partition}:{offset}"

    @property
    def reason(self) -> str:
        """``Class code/subcode: message``, whichever parts are known."""
        error_class = self.headers.get(Header.ERROR_CLASS, "unknown")
        codes = "/".join(
            c
            for c in (self.headers.get(Header.ERROR_CODE), self.headers.get(Header.ERROR_SUBCODE))
            if c
        )
        message = self.headers.get(Header.ERROR_MESSAGE, "")
        head = f"{error_class} {codes}".strip()
        return f"{head}: {message}" if message else head

    @property
    def original_timestamp_ms(self) -> int:
        return _int(self.headers.get(Header.ORIGINAL_TIMESTAMP)) or self.timestamp_ms

    def age(self, now_ms: int) -> timedelta:
        """Time since the record entered the dead-letter topic."""
        return timedelta(milliseconds=max(0, now_ms - self.timestamp_ms))


HeaderValue = str | bytes | None


class ConsumedRecord(Protocol):
    """What a dead letter is parsed from (``confluent_kafka.Message`` satisfies it)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> str | bytes | None: ...
    def value(self) -> str | bytes | None: ...
    def headers(
        self,
    ) -> Sequence[tuple[str, HeaderValue]] | Mapping[str, HeaderValue] | None: ...
    def timestamp(self) -> tuple[int, int]: ...


def parse_dead_letter(record: ConsumedRecord) -> DeadLetter:
    """A consumed record as a ``DeadLetter``; header values that are not UTF-8 are replaced."""
    headers: dict[str, str] = {}
    raw_headers = record.headers() or []
    pairs = list(raw_headers.items()) if isinstance(raw_headers, Mapping) else raw_headers
    for name, raw in pairs:
        if raw is None:
            continue
        headers[name] = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    key = record.key()
    value = record.value()
    return DeadLetter(
        ref=RecordRef(record.topic() or "", record.partition() or 0, record.offset() or 0),
        timestamp_ms=record.timestamp()[1],
        key=key.encode() if isinstance(key, str) else key,
        value=value.encode() if isinstance(value, str) else (value or b""),
        headers=headers,
    )


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters a command acts on; unset fields match everything.

    ``older_than``/``newer_than`` compare the time since the record entered the DLQ.
    """

    tenant_id: str | None = None
    event_name: str | None = None
    error_code: str | None = None
    older_than: timedelta | None = None
    newer_than: timedelta | None = None

    def matches(self, letter: DeadLetter, now_ms: int) -> bool:
        age = letter.age(now_ms)
        return not (
            (self.tenant_id is not None and letter.tenant_id != self.tenant_id)
            or (self.event_name is not None and letter.event_name != self.event_name)
            or (self.error_code is not None and letter.error_code != self.error_code)
            or (self.older_than is not None and age < self.older_than)
            or (self.newer_than is not None and age > self.newer_than)
        )

    def describe(self) -> str:
        """A stable text of the selection (names the redrive's progress group)."""
        return (
            f"tenant={self.tenant_id};event={self.event_name};code={self.error_code};"
            f"older={self.older_than};newer={self.newer_than}"
        )


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``7d`` or ``1w`` as a timedelta.

    Raises:
        ValueError: not one of those forms.
    """
    match = _DURATION.match(text.lower())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 2h, 7d)")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def build_dead_letter_headers(values: Mapping[str, str | int | None]) -> list[tuple[str, bytes]]:
    """Encode header values as the worker does (UTF-8 strings); None values are left out.

    For tools and tests that synthesise dead letters; keys are ``Header`` names.
    """
    return [(name, str(value).encode()) for name, value in values.items() if value is not None]
