"""Headers of forwarded (retry and dead-letter) records: build, parse, replace per hop.

Every forwarded record carries one fixed set of ``capi-*`` headers. They are replaced on
each hop, never appended, so a record that went through every tier is no bigger than one
that went through one. The ``capi-original-*`` headers name the main-topic record and are
kept from the first hop. Other headers (a producer's trace id, the redrive tool's count)
pass through.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from capi_stream.kafka.message import KafkaRecord

ATTEMPT = "capi-attempt"
DUE_MS = "capi-due-ms"
ORIGINAL_TOPIC = "capi-original-topic"
ORIGINAL_PARTITION = "capi-original-partition"
ORIGINAL_OFFSET = "capi-original-offset"
ORIGINAL_TIMESTAMP = "capi-original-timestamp"
ERROR_CLASS = "capi-error-class"
ERROR_CODE = "capi-error-code"
ERROR_SUBCODE = "capi-error-subcode"
ERROR_MESSAGE = "capi-error-message"
TENANT_ID = "capi-tenant-id"
EVENT_ID = "capi-event-id"
EVENT_NAME = "capi-event-name"
FAILED_AT = "capi-failed-at"

PREFIX = "capi-"
# The set replaced on every hop; any other header (``capi-redrive-count`` of the redrive
# tool, a producer's trace id) passes through unchanged.
HOP_HEADERS = frozenset(
    {
        ATTEMPT,
        DUE_MS,
        ORIGINAL_TOPIC,
        ORIGINAL_PARTITION,
        ORIGINAL_OFFSET,
        ORIGINAL_TIMESTAMP,
        ERROR_CLASS,
        ERROR_CODE,
        ERROR_SUBCODE,
        ERROR_MESSAGE,
        TENANT_ID,
        EVENT_ID,
        EVENT_NAME,
        FAILED_AT,
    }
)
MAX_MESSAGE_BYTES = 1024
MAX_VALUE_BYTES = 256  # any other header value (ids, names): bounded too

Headers = list[tuple[str, bytes]]


# Origin and HopContext are NamedTuples, not frozen dataclasses: every consumed record makes
# one of each, and a tuple is built in a third of the time (frozen and comparable alike).
class Origin(NamedTuple):
    """Where the main-topic record of a (possibly forwarded) record was read."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int


class HopContext(NamedTuple):
    """What a consumed record's headers say about its journey.

    ``attempt`` is the number of the send attempt this record will make (1 on the main
    topic); ``due_ms`` is when it may be processed (None = now).
    """

    attempt: int
    due_ms: int | None
    origin: Origin
    foreign: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a record is forwarded; becomes the ``capi-error-*`` headers."""

    error_class: str
    message: str
    code: int | None = None
    subcode: int | None = None


@dataclass(frozen=True, slots=True)
class EventIdentity:
    """The event a forwarded record holds, when it could be decoded."""

    tenant_id: str
    event_id: str
    event_name: str


def cap_text(text: str, limit: int = MAX_MESSAGE_BYTES) -> bytes:
    """UTF-8 ``text`` cut to at most ``limit`` bytes without splitting a character.

    Meta's messages are not ours: a lone surrogate in one becomes ``?``, never an error.
    """
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return data
    cut = data[: limit - 3].decode("utf-8", "ignore").encode("utf-8")
    return cut + b"..."


def _as_bytes(value: str | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return value.encode("utf-8")


def _int(value: bytes | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None


def parse_hop(record: KafkaRecord) -> HopContext:
    """Read a consumed record's ``capi-*`` headers; a main-topic record is attempt 1.

    Malformed values are treated as absent: a record is never stuck on a bad header.
    """
    ours: dict[str, bytes] = {}
    foreign: list[tuple[str, bytes]] = []
    for name, raw in record.headers() or []:
        value = _as_bytes(raw)
        if name in HOP_HEADERS:
            if value is not None:
                ours[name] = value
        elif value is not None:
            foreign.append((name, value))
    attempt = _int(ours.get(ATTEMPT))
    topic = ours.get(ORIGINAL_TOPIC)
    partition = _int(ours.get(ORIGINAL_PARTITION))
    offset = _int(ours.get(ORIGINAL_OFFSET))
    if topic is not None and partition is not None and offset is not None:
        origin = Origin(
            topic.decode("utf-8", "replace"),
            partition,
            offset,
            _int(ours.get(ORIGINAL_TIMESTAMP)) or 0,
        )
    else:
        origin = Origin(
            record.topic() or "",
            record.partition() or 0,
            record.offset() or 0,
            record.timestamp()[1],
        )
    return HopContext(
        attempt=attempt if attempt is not None and attempt >= 1 else 1,
        due_ms=_int(ours.get(DUE_MS)),
        origin=origin,
        foreign=tuple(foreign),
    )


def build_headers(
    context: HopContext,
    *,
    attempt: int,
    due_ms: int | None,
    failure: Failure,
    failed_at_ms: int,
    event: EventIdentity | None = None,
) -> Headers:
    """The complete header list of the next hop: foreign headers, then a fresh ``capi-*`` set."""
    origin = context.origin
    pairs: list[tuple[str, str | bytes | int | None]] = [
        (ATTEMPT, attempt),
        (DUE_MS, due_ms),
        (ORIGINAL_TOPIC, origin.topic),
        (ORIGINAL_PARTITION, origin.partition),
        (ORIGINAL_OFFSET, origin.offset),
        (ORIGINAL_TIMESTAMP, origin.timestamp_ms),
        (ERROR_CLASS, failure.error_class),
        (ERROR_CODE, failure.code),
        (ERROR_SUBCODE, failure.subcode),
        (ERROR_MESSAGE, cap_text(failure.message)),
        (TENANT_ID, event.tenant_id if event else None),
        (EVENT_ID, event.event_id if event else None),
        (EVENT_NAME, event.event_name if event else None),
        (FAILED_AT, failed_at_ms),
    ]
    headers: Headers = list(context.foreign)
    for name, value in pairs:
        if value is None:
            continue
        if isinstance(value, bytes):
            headers.append((name, value))
        else:
            headers.append((name, cap_text(str(value), MAX_VALUE_BYTES)))
    return headers


def header_map(headers: Iterable[tuple[str, str | bytes | None]] | None) -> dict[str, str]:
    """Headers as ``{name: text}`` (last value wins); for tools and tests."""
    result: dict[str, str] = {}
    for name, value in headers or []:
        raw = _as_bytes(value)
        if raw is not None:
            result[name] = raw.decode("utf-8", "replace")
    return result


def count_hop_headers(headers: Sequence[tuple[str, bytes]]) -> dict[str, int]:
    """How often each hop header occurs (each must occur at most once)."""
    counts: dict[str, int] = {}
    for name, _ in headers:
        if name in HOP_HEADERS:
            counts[name] = counts.get(name, 0) + 1
    return counts
