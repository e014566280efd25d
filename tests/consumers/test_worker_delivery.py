"""The worker end to end: real broker, both databases, the Meta emulator over HTTP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import build_codec
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames
from consumers import headers as h
from storage.models import EventStatus
from tests.support.emulator_fixture import Emulator
from tests.support.worker_fixtures import (
    RAW_EMAIL,
    committed,
    event_rows,
    make_conversion,
    make_worker_config,
    produce,
    produce_events,
    read_topic,
    running_worker,
    seed_tenant,
    sha256,
    wait_for,
)

CODEC = build_codec()
KINDS = ("Lead", "AddToCart", "InitiateCheckout", "Purchase")


def test_every_event_kind_is_sent_hashed_and_committed(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    tenant_id, pixel = seed_tenant(session_factory)
    events = [make_conversion(tenant_id, n, kind) for n, kind in enumerate(KINDS)]
    produce_events(kafka_config, topic_names.main, events, CODEC)
    config = make_worker_config(group_id, emulator.base_url)

    with running_worker(kafka_config, topic_names, session_factory, config) as running:
        wait_for(
            lambda: (
                {r.status for r in event_rows(session_factory, tenant_id)} == {"sent"}
                and len(event_rows(session_factory, tenant_id)) == 4
            ),
            what="4 sent rows",
        )
        rows = event_rows(session_factory, tenant_id)
        wait_for(lambda: committed(kafka_config, group_id, topic_names.main) == 4, what="commit")
        health = running.worker.health
        assert health is not None
        base = f"http://127.0.0.1:{health.port}"
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/readyz").status_code == 200
        metrics = httpx.get(f"{base}/metrics").text
    assert "capi_worker_sent_total 4.0" in metrics
    assert "capi_worker_consumer_lag" in metrics
    assert f'capi_worker_tenant_events_total{{outcome="sent",tenant="{tenant_id}"}} 4.0' in metrics
    assert "capi_worker_ready 1.0" in metrics
    assert "capi_worker_dead_letter_events 0.0" in metrics  # read from the database

    received = {e.payload["event_id"]: e.payload for e in emulator.state.events(pixel)}
    assert set(received) == {e.event_id for e in events}
    for n, event in enumerate(events):
        payload = received[event.event_id]
        assert payload["event_name"] == KINDS[n]
        user = payload["user_data"]
        assert isinstance(user, dict)
        email = RAW_EMAIL.format(n=n).strip().lower()
        assert user["em"] == [sha256(email)]
        assert user["ph"] == [sha256("16505551212")]
        assert user["fn"] == sha256("jane")
        assert user["external_id"] == [sha256(str(event.contact_id))] if event.contact_id else True
        assert user["fbp"] == "fb.1.1596403881668.1116446470"  # never hashed
    purchase = received[events[3].event_id]
    assert purchase["custom_data"] == {"value": 42.5, "currency": "USD", "order_id": "o3"}
    by_event = {row.event_id: row for row in rows}
    for n, event in enumerate(events):
        row = by_event[event.event_id]
        assert row.send_attempts == 1 and row.sent_to_meta
        assert row.user_email_hash == sha256(RAW_EMAIL.format(n=n).strip().lower())
        assert row.user_data == received[event.event_id]["user_data"]


def test_undecodable_and_expired_records_among_good_ones(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    tenant_id, pixel = seed_tenant(session_factory)
    good = [make_conversion(tenant_id, n, "Lead") for n in range(3)]
    old = make_conversion(tenant_id, 9, "Lead", event_time=datetime.now(UTC) - timedelta(days=8))
    values = [CODEC.encode(e) for e in good] + [b"\x00garbage", CODEC.encode(old)]
    produce(kafka_config, topic_names.main, values)

    config = make_worker_config(group_id, emulator.base_url)
    with running_worker(kafka_config, topic_names, session_factory, config):
        wait_for(lambda: committed(kafka_config, group_id, topic_names.main) == 5, what="commit")

    rows = {row.event_id: row for row in event_rows(session_factory, tenant_id)}
    assert {rows[e.event_id].status for e in good} == {EventStatus.SENT}
    assert rows[old.event_id].status == EventStatus.EXPIRED
    assert rows[old.event_id].send_attempts == 0
    assert {e.payload["event_id"] for e in emulator.state.events(pixel)} == {
        e.event_id for e in good
    }
    dead = read_topic(kafka_config, topic_names.dlq, at_least=1)
    # A set: a rebalance before the commit may dead-letter the same record twice.
    assert {d.value for d in dead} == {b"\x00garbage"}  # the original bytes
    assert dead[0].headers[h.ERROR_CLASS] == "DecodeError"
    assert dead[0].headers[h.ORIGINAL_TOPIC] == topic_names.main
    assert dead[0].headers[h.ATTEMPT] == "1"


def test_tenants_that_cannot_send_are_dead_lettered_with_what_to_fix(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    no_meta, _ = seed_tenant(session_factory, pixel_id="")
    unknown = make_conversion(seed_tenant(session_factory)[0], 1).model_copy(
        update={"tenant_id": uuid.uuid4()}
    )
    produce_events(kafka_config, topic_names.main, [make_conversion(no_meta, 0), unknown], CODEC)
    config = make_worker_config(group_id, emulator.base_url)
    with running_worker(kafka_config, topic_names, session_factory, config):
        dead = read_topic(kafka_config, topic_names.dlq, at_least=2, timeout=30)
    reasons = {d.headers[h.ERROR_CLASS]: d.headers[h.ERROR_MESSAGE] for d in dead}
    assert "capi tenants set-meta" in reasons["ConfigurationError"]
    assert "unknown tenant" in reasons["UnknownTenantError"]
    for record in dead:  # dead letters hold hashed data only
        assert b"jane.doe" not in record.value.lower()
        assert b"menlo" not in record.value.lower()
