"""The batch processor on fakes of its seams (store, contact linker, Meta): what each record
of a batch becomes, without a broker or a database."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from capi_stream.errors import DependencyUnavailableError
from capi_stream.kafka.producer import OutgoingRecord
from consumers import headers as h
from consumers.headers import header_map
from consumers.pipeline.store import TenantRecord
from meta_capi.errors import (
    MetaAPIError,
    MetaPermanentError,
    MetaRetryableError,
    MetaTimeoutError,
)
from storage.events import StoredEvent
from storage.models import EventStatus
from tests.support.fakes import (
    CODEC,
    CREDENTIALS,
    START,
    TENANT,
    Clock,
    FakeStore,
    NoContacts,
    ScriptedMeta,
    build_event,
    build_processor,
    build_records,
    incoming,
)

RECENT = START - timedelta(hours=1)


def _headers(record: OutgoingRecord) -> dict[str, str]:
    return header_map(record.headers)


def test_a_duplicate_inside_one_batch_is_stored_and_sent_once() -> None:
    meta, store = ScriptedMeta(), FakeStore()
    processor = build_processor(meta, store, Clock())
    [record] = build_records(1, attempt=1, event_time=RECENT)
    twin = incoming(record.value, offset=1)

    report = processor.process([record, twin])

    assert (report.sent, report.already_sent, report.forwards) == (1, 1, [])
    assert [len(rows) for rows in store.upserted] == [1]
    assert meta.calls == [[build_event(0, RECENT).event_id]]
    processor.sender.close()


def test_an_event_whose_row_was_already_sent_is_not_sent_again() -> None:
    meta, store = ScriptedMeta(), FakeStore()
    processor = build_processor(meta, store, Clock())
    store.sent.add((TENANT, build_event(0, RECENT).event_id))

    report = processor.process(build_records(2, attempt=1, event_time=RECENT))

    assert (report.sent, report.already_sent, report.forwards) == (1, 1, [])
    assert meta.calls == [[build_event(1, RECENT).event_id]]
    assert [o.status for o in store.outcomes] == [EventStatus.SENT]
    processor.sender.close()


def test_an_event_older_than_seven_days_is_recorded_expired_and_neither_sent_nor_forwarded() -> (
    None
):
    meta, store = ScriptedMeta(), FakeStore()
    processor = build_processor(meta, store, Clock())

    report = processor.process(build_records(1, attempt=3, event_time=START - timedelta(days=8)))

    assert (report.expired, report.sent, report.forwards, meta.requests) == (1, 0, [], 0)
    assert [(o.status, o.attempt) for o in store.outcomes] == [(EventStatus.EXPIRED, 0)]
    assert store.upserted[0][0]["send_attempts"] == 0  # no send made: no attempt counted
    processor.sender.close()


def test_every_accepted_event_is_recorded_sent_with_its_attempt_and_trace_id() -> None:
    meta, store = ScriptedMeta(), FakeStore()
    processor = build_processor(meta, store, Clock())

    report = processor.process(build_records(3, attempt=2, event_time=RECENT))

    assert (report.sent, report.forwards, meta.requests) == (3, [], 1)
    assert {(o.status, o.attempt, o.fbtrace_id) for o in store.outcomes} == {
        (EventStatus.SENT, 2, "trace")
    }
    assert set(store.counted.values()) == {1}
    processor.sender.close()


SERVER_ERROR = MetaRetryableError("server error", status_code=500, classification="server_error")
TIMEOUT = MetaTimeoutError("timed out", classification="timeout")
INVALID = MetaPermanentError("invalid parameter", code=100, status_code=400)


@pytest.mark.parametrize(
    ("error", "attempt", "topic", "next_attempt", "status"),
    [
        (SERVER_ERROR, 1, "t.retry.1", "2", EventStatus.RETRYING),
        (TIMEOUT, 4, "t.retry.4", "5", EventStatus.RETRYING),
        (SERVER_ERROR, 5, "t.dlq", "5", EventStatus.DEAD),
        (INVALID, 1, "t.dlq", "1", EventStatus.DEAD),
    ],
    ids=["retriable-first", "retriable-fourth", "retriable-last", "permanent"],
)
def test_a_failed_send_goes_to_the_next_tier_while_attempts_are_left_else_to_the_dlq(
    error: MetaAPIError, attempt: int, topic: str, next_attempt: str, status: EventStatus
) -> None:
    meta, store = ScriptedMeta(lambda _event: error), FakeStore()
    processor = build_processor(meta, store, Clock())

    report = processor.process(build_records(1, attempt=attempt, event_time=RECENT))

    [forward] = report.forwards
    headers = _headers(forward)
    assert (forward.topic, headers[h.ATTEMPT]) == (topic, next_attempt)
    assert headers[h.ERROR_CLASS] == type(error).__name__
    assert report.failed_by_class == {type(error).__name__: 1}
    assert report.dead_lettered == (1 if status is EventStatus.DEAD else 0)
    assert [(o.status, o.attempt) for o in store.outcomes] == [(status, attempt)]
    # The forwarded value is the event (hashed), still decodable by the next hop.
    assert CODEC.decode(forward.value).event_id == build_event(0, RECENT).event_id
    processor.sender.close()


def test_undecodable_bytes_go_to_the_dlq_unchanged_and_the_rest_of_the_batch_is_sent() -> None:
    meta, store = ScriptedMeta(), FakeStore()
    processor = build_processor(meta, store, Clock())
    garbage = incoming(b"\x00not avro", offset=7)

    report = processor.process([garbage, *build_records(1, attempt=1, event_time=RECENT)])

    [forward] = report.forwards
    assert (forward.topic, forward.value, forward.key) == ("t.dlq", b"\x00not avro", b"k")
    headers = _headers(forward)
    assert headers[h.ERROR_CLASS] == "DecodeError"
    assert (headers[h.ORIGINAL_TOPIC], headers[h.ORIGINAL_OFFSET]) == ("t", "7")
    assert (report.dead_lettered, report.sent) == (1, 1)
    assert len(store.upserted[0]) == 1  # no row for bytes that are not an event
    processor.sender.close()


def test_an_unknown_tenant_or_one_without_meta_credentials_is_dead_lettered_unsent() -> None:
    unknown, unconfigured = uuid.uuid4(), uuid.uuid4()
    tenants = {
        TENANT: TenantRecord(TENANT, "t", "US", CREDENTIALS),
        unconfigured: TenantRecord(unconfigured, "u", "US", None),
    }
    meta, store = ScriptedMeta(), FakeStore()
    processor = build_processor(meta, store, Clock(), tenants=tenants)
    records = [
        *build_records(1, attempt=1, event_time=RECENT, tenant_id=unknown),
        *build_records(1, attempt=1, event_time=RECENT, tenant_id=unconfigured),
        *build_records(1, attempt=1, event_time=RECENT),
    ]

    report = processor.process(records)

    assert sorted(_headers(f)[h.ERROR_CLASS] for f in report.forwards) == [
        "ConfigurationError",
        "UnknownTenantError",
    ]
    assert {f.topic for f in report.forwards} == {"t.dlq"}
    assert (report.dead_lettered, report.sent, meta.requests) == (2, 1, 1)
    processor.sender.close()


def test_one_pass_sorts_a_mixed_batch_and_dead_letters_in_record_order() -> None:
    unknown = uuid.uuid4()
    meta, store = ScriptedMeta(), FakeStore()
    tenants = {TENANT: TenantRecord(TENANT, "t", "US", CREDENTIALS)}
    processor = build_processor(meta, store, Clock(), tenants=tenants)
    [good] = build_records(1, attempt=1, event_time=RECENT)
    [stranger] = build_records(1, attempt=1, event_time=RECENT, tenant_id=unknown)
    records = [
        incoming(stranger.value, offset=1),
        good,
        incoming(b"\x00not avro", offset=3),
        incoming(good.value, offset=4),  # the same event again: the first copy decides
    ]

    report = processor.process(records)

    assert [
        (_headers(f)[h.ERROR_CLASS], _headers(f)[h.ORIGINAL_OFFSET]) for f in report.forwards
    ] == [
        ("UnknownTenantError", "1"),
        ("DecodeError", "3"),
    ]
    assert (report.dead_lettered, report.sent, report.already_sent) == (2, 1, 1)
    assert [len(rows) for rows in store.upserted] == [1]
    assert meta.calls == [[build_event(0, RECENT).event_id]]
    processor.sender.close()


def test_contacts_are_linked_once_per_batch_for_the_unique_events() -> None:
    meta, store, contacts = ScriptedMeta(), FakeStore(), NoContacts()
    processor = build_processor(meta, store, Clock(), contacts=contacts)
    records = build_records(2, attempt=1, event_time=RECENT)

    processor.process([*records, incoming(records[0].value, offset=9)])

    assert contacts.linked == [[build_event(n, RECENT).event_id for n in range(2)]]
    processor.sender.close()


class DownStore(FakeStore):
    def upsert(self, rows: object) -> dict[tuple[uuid.UUID, str], StoredEvent]:
        raise DependencyUnavailableError("database unavailable: OperationalError")


def test_a_database_outage_escapes_the_batch_so_the_worker_pauses_without_spending_attempts() -> (
    None
):
    meta, store = ScriptedMeta(), DownStore()
    processor = build_processor(meta, store, Clock())

    with pytest.raises(DependencyUnavailableError):
        processor.process(build_records(2, attempt=1, event_time=RECENT))

    assert (meta.requests, store.outcomes) == (0, [])
    processor.sender.close()
