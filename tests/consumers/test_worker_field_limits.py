"""The event model's largest values fit the database: none may stall a partition."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import build_codec
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames
from storage.models import EventStatus
from tests.support.emulator_fixture import Emulator
from tests.support.worker_fixtures import (
    committed,
    event_rows,
    make_conversion,
    make_worker_config,
    produce_events,
    running_worker,
    seed_tenant,
    wait_for,
)

CODEC = build_codec()


def test_longest_source_ids_and_largest_value_are_stored_and_sent(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    tenant_id, pixel = seed_tenant(session_factory)
    long_id = "c" * 512
    biggest = Decimal("1000000000000000.5")
    events = [
        make_conversion(tenant_id, 0, source_ids={"stripe_customer_id": long_id}),
        make_conversion(
            tenant_id, 1, custom_data={"value": biggest, "currency": "USD", "order_id": "o1"}
        ),
        make_conversion(tenant_id, 2),
    ]
    produce_events(kafka_config, topic_names.main, events, CODEC)
    config = make_worker_config(group_id, emulator.base_url)
    with running_worker(kafka_config, topic_names, session_factory, config):
        wait_for(lambda: committed(kafka_config, group_id, topic_names.main) == 3, what="commit")
    rows = {row.event_id: row for row in event_rows(session_factory, tenant_id)}
    assert {rows[e.event_id].status for e in events} == {EventStatus.SENT}
    assert rows[events[1].event_id].event_value == biggest
    sent = {e.payload["event_id"] for e in emulator.state.events(pixel)}
    assert sent == {e.event_id for e in events}
