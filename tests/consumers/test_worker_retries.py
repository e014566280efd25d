"""Meta failures through the retry tiers to success or to the dead-letter topic."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import build_codec
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames
from consumers import headers as h
from consumers.dlq_limit import DeadLetterLimitError
from storage.models import EventStatus
from tests.support.emulator_fixture import Emulator
from tests.support.worker_fixtures import (
    TOKEN,
    committed,
    event_rows,
    make_conversion,
    make_worker_config,
    produce,
    produce_events,
    read_topic,
    running_worker,
    seed_tenant,
    wait_for,
)

CODEC = build_codec()
RAW_PII = (b"jane.doe", b"Jane", b"Menlo", b"555-1212", b"94025")


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("http_500", {}),
        ("http_500_garbled", {}),  # a NUL and a lone surrogate in Meta's message
        ("timeout", {"delay_seconds": 1.0}),
    ],
)
def test_meta_faults_are_retried_through_the_tiers_then_sent(
    kind: str,
    extra: dict[str, float],
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    tenant_id, pixel = seed_tenant(session_factory)
    emulator.state.add_fault(kind, pixel_id=pixel, count=2, **extra)  # type: ignore[arg-type]
    event = make_conversion(tenant_id, 0)
    produce_events(kafka_config, topic_names.main, [event], CODEC)
    config = make_worker_config(group_id, emulator.base_url, meta_timeout_seconds=0.5)

    with running_worker(kafka_config, topic_names, session_factory, config):
        row = wait_for(
            lambda: next(
                (r for r in event_rows(session_factory, tenant_id) if r.status == "sent"), None
            ),
            timeout=40,
            what="the row sent",
        )
    assert row is not None and row.send_attempts == 3
    assert len(event_rows(session_factory, tenant_id)) == 1
    assert [e.payload["event_id"] for e in emulator.state.events(pixel)] == [event.event_id]
    tier1 = read_topic(kafka_config, topic_names.retries[0], at_least=1)
    tier2 = read_topic(kafka_config, topic_names.retries[1], at_least=1)
    # At-least-once: a rebalance between a forward and its commit forwards that record again
    # (seen under load: ["2", "2", "3"]). The design promises each tier's attempt number, in
    # order, none skipped, not a count of records.
    assert sorted({r.headers[h.ATTEMPT] for r in tier1}) == ["2"]
    assert sorted({r.headers[h.ATTEMPT] for r in tier2}) == ["3"]
    for record in tier1 + tier2:
        assert record.headers[h.EVENT_ID] == event.event_id
        assert record.headers[h.ORIGINAL_TOPIC] == topic_names.main
        assert record.headers[h.ERROR_CLASS].startswith("Meta")
        assert int(record.headers[h.DUE_MS]) > int(record.headers[h.FAILED_AT])
        for raw in RAW_PII:  # retry topics carry hashed user data only
            assert raw not in record.value
    assert {int(r.headers[h.ORIGINAL_OFFSET]) for r in tier2} == {0}  # kept from the first hop


def test_an_invalid_token_dead_letters_on_the_first_attempt(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    bad = "EAAB-revoked"
    tenant_id, _ = seed_tenant(session_factory, token=bad)
    emulator.state.add_invalid_token(bad)
    produce_events(kafka_config, topic_names.main, [make_conversion(tenant_id, 0)], CODEC)
    config = make_worker_config(group_id, emulator.base_url)
    with running_worker(kafka_config, topic_names, session_factory, config):
        dead = read_topic(kafka_config, topic_names.dlq, at_least=1, timeout=30)
        wait_for(lambda: committed(kafka_config, group_id, topic_names.main) == 1)
    (row,) = event_rows(session_factory, tenant_id)
    assert (row.status, row.send_attempts) == (EventStatus.DEAD, 1)
    assert dead[0].headers[h.ERROR_CLASS] == "MetaCredentialsError"
    assert dead[0].headers[h.ERROR_CODE] == "190"
    assert "rotate" in dead[0].headers[h.ERROR_MESSAGE]
    assert bad not in str(dead[0].headers)
    assert read_topic(kafka_config, topic_names.retries[0], timeout=1) == []


def test_five_failures_end_in_the_dead_letter_topic(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    tenant_id, pixel = seed_tenant(session_factory, token=TOKEN)
    emulator.state.add_fault("http_500", pixel_id=pixel)  # until cleared
    event = make_conversion(tenant_id, 0, "Lead")
    produce_events(kafka_config, topic_names.main, [event], CODEC)
    config = make_worker_config(group_id, emulator.base_url)
    with running_worker(kafka_config, topic_names, session_factory, config):
        dead = read_topic(kafka_config, topic_names.dlq, at_least=1, timeout=40)
    (row,) = event_rows(session_factory, tenant_id)
    assert (row.status, row.send_attempts, row.sent_to_meta) == (EventStatus.DEAD, 5, False)
    assert dead[0].headers[h.ATTEMPT] == "5"
    assert dead[0].headers[h.ERROR_CLASS] == "MetaRetryableError"
    for n, tier in enumerate(topic_names.retries, start=2):  # duplicates are at-least-once
        attempts = {r.headers[h.ATTEMPT] for r in read_topic(kafka_config, tier, at_least=1)}
        assert attempts == {str(n)}
    for raw in RAW_PII:
        assert raw not in dead[0].value


def test_the_dead_letter_limit_stops_the_worker_after_committing(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    produce(kafka_config, topic_names.main, [b"junk-%d" % n for n in range(4)])
    config = make_worker_config(group_id, emulator.base_url, dlq_limit_count=2)
    with running_worker(kafka_config, topic_names, session_factory, config) as running:
        running.thread.join(30)
        assert not running.thread.is_alive()
        error = running.errors.pop()
    assert isinstance(error, DeadLetterLimitError)
    assert "dead-letter limit" in str(error)
    assert running.worker.stopped_by_dlq_limit
    assert committed(kafka_config, group_id, topic_names.main) == 4


def test_a_rate_limited_tenant_waits_while_other_tenants_continue(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    throttled, pixel_a = seed_tenant(session_factory)
    other, pixel_b = seed_tenant(session_factory)
    emulator.state.add_fault("rate_limit_17", pixel_id=pixel_a, count=1, retry_minutes=0.03)
    first, later = make_conversion(throttled, 1), make_conversion(throttled, 2)
    produce_events(kafka_config, topic_names.main, [first, make_conversion(other, 1)], CODEC)
    config = make_worker_config(group_id, emulator.base_url)

    def status(tenant: object) -> set[str]:
        return {r.status for r in event_rows(session_factory, tenant)}  # type: ignore[arg-type]

    with running_worker(kafka_config, topic_names, session_factory, config):
        wait_for(lambda: status(throttled) == {EventStatus.RETRYING}, what="throttled")
        produce_events(kafka_config, topic_names.main, [later], CODEC)  # during the block
        wait_for(lambda: status(other) == {EventStatus.SENT}, what="the other tenant sent")
        assert EventStatus.SENT not in status(throttled)  # blocked for 1.8 s
        wait_for(
            lambda: (
                len(event_rows(session_factory, throttled)) == 2
                and status(throttled) == {EventStatus.SENT}
            ),
            what="the throttled tenant sent after its block",
        )
    attempts = {r.event_id: r.send_attempts for r in event_rows(session_factory, throttled)}
    # The throttled call reached Meta, so it counts as a send; the event deferred during the
    # block was sent once. Neither spent an attempt of its retry budget.
    assert attempts == {first.event_id: 2, later.event_id: 1}
    # They waited on the first tier whose delay covers the block (here the last: 1.8 s > 0.3).
    tier = {
        r.headers[h.EVENT_ID]: r.headers
        for t in topic_names.retries
        for r in read_topic(kafka_config, t, timeout=5)
    }
    assert tier[first.event_id][h.ATTEMPT] == "1"
    assert tier[later.event_id][h.ATTEMPT] == "1"
    assert tier[later.event_id][h.ERROR_CLASS] == "MetaRateLimitedError"
    assert len(emulator.state.events(pixel_b)) == 1
