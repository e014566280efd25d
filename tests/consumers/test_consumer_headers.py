"""Forwarded-record headers: parse, build, replace per hop, cap."""

from __future__ import annotations

from dataclasses import dataclass, field

from consumers import headers as h
from consumers.headers import EventIdentity, Failure, build_headers, parse_hop


@dataclass
class FakeRecord:
    topic_: str = "main"
    partition_: int = 2
    offset_: int = 41
    headers_: list[tuple[str, str | bytes | None]] | None = field(default_factory=list)
    timestamp_ms: int = 1_700_000_000_000

    def topic(self) -> str | None:
        return self.topic_

    def partition(self) -> int | None:
        return self.partition_

    def offset(self) -> int | None:
        return self.offset_

    def key(self) -> bytes | None:
        return None

    def value(self) -> bytes | None:
        return b""

    def headers(self) -> list[tuple[str, str | bytes | None]] | None:
        return self.headers_

    def timestamp(self) -> tuple[int, int]:
        return (1, self.timestamp_ms)


FAILURE = Failure("MetaRetryableError", "Meta server error", code=1, subcode=None)
EVENT = EventIdentity("tenant-1", "event-1", "Purchase")


def test_a_main_topic_record_is_attempt_one_and_its_own_origin() -> None:
    context = parse_hop(FakeRecord(headers_=None))
    assert context.attempt == 1
    assert context.due_ms is None
    assert context.origin == h.Origin("main", 2, 41, 1_700_000_000_000)


def test_build_then_parse_round_trips_and_keeps_the_first_origin() -> None:
    first = parse_hop(FakeRecord(headers_=[("trace-id", b"abc")]))
    hop1 = build_headers(
        first, attempt=2, due_ms=5000, failure=FAILURE, failed_at_ms=4000, event=EVENT
    )
    on_tier = FakeRecord(topic_="main.retry.1", partition_=0, offset_=7, headers_=list(hop1))
    second = parse_hop(on_tier)
    assert second.attempt == 2
    assert second.due_ms == 5000
    assert second.origin == first.origin  # the main-topic record, not the tier record
    assert second.foreign == (("trace-id", b"abc"),)
    values = h.header_map(hop1)
    assert values[h.EVENT_ID] == "event-1"
    assert values[h.TENANT_ID] == "tenant-1"
    assert values[h.ERROR_CLASS] == "MetaRetryableError"
    assert values[h.ERROR_CODE] == "1"
    assert h.ERROR_SUBCODE not in values  # unknown fields are omitted, not "None"


def test_headers_are_replaced_per_hop_never_appended() -> None:
    context = parse_hop(FakeRecord(headers_=[("capi-redrive-count", b"1")]))
    record_headers: list[tuple[str, bytes]] = []
    for attempt in range(2, 7):
        record_headers = build_headers(
            context, attempt=attempt, due_ms=attempt, failure=FAILURE, failed_at_ms=1, event=EVENT
        )
        context = parse_hop(FakeRecord(topic_="tier", headers_=list(record_headers)))
    assert set(h.count_hop_headers(record_headers).values()) == {1}
    assert len(record_headers) == 14  # 13 hop headers (no subcode) + the redrive count
    assert h.header_map(record_headers)["capi-redrive-count"] == "1"
    assert context.attempt == 6


def test_the_error_message_is_capped_at_one_kilobyte_on_a_character_boundary() -> None:
    failure = Failure("X", "é" * 5000)
    built = build_headers(
        parse_hop(FakeRecord()), attempt=2, due_ms=None, failure=failure, failed_at_ms=1
    )
    message = dict(built)[h.ERROR_MESSAGE]
    assert len(message) <= h.MAX_MESSAGE_BYTES
    assert message.decode("utf-8").endswith("...")
    assert sum(len(k) + len(v) for k, v in built) < 2048


def test_a_lone_surrogate_in_metas_message_becomes_a_question_mark() -> None:
    failure = Failure("MetaRetryableError", "bad \ud800 news")
    built = build_headers(
        parse_hop(FakeRecord()), attempt=2, due_ms=None, failure=failure, failed_at_ms=1
    )
    assert dict(built)[h.ERROR_MESSAGE] == b"bad ? news"


def test_malformed_headers_are_treated_as_absent() -> None:
    context = parse_hop(FakeRecord(headers_=[(h.ATTEMPT, b"two"), (h.DUE_MS, "soon")]))
    assert context.attempt == 1
    assert context.due_ms is None


def test_the_package_exports_what_all_lists() -> None:
    import consumers

    for name in consumers.__all__:
        assert getattr(consumers, name) is not None
    assert sorted(consumers.__all__) == sorted(consumers._EXPORTS)


def test_the_worker_reads_a_record_without_headers_as_parse_hop_does() -> None:
    from typing import Any, cast

    from consumers.worker import _incoming

    forwarded = build_headers(
        parse_hop(FakeRecord(topic_="main", offset_=7)),
        attempt=2,
        due_ms=5,
        failure=Failure("E", "m"),
        failed_at_ms=1,
    )
    cases: list[list[tuple[str, str | bytes | None]] | None] = [
        None,
        [],
        list(forwarded),
        [("trace", b"t")],
    ]
    for headers in cases:
        record = FakeRecord(topic_="retry-1", headers_=headers)
        incoming = _incoming(cast(Any, record))
        assert incoming.context == parse_hop(record)
        assert (incoming.topic, incoming.partition, incoming.offset) == ("retry-1", 2, 41)
