"""The queue API (``consumers.queue``) against the real database, broker and emulator."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from confluent_kafka import Consumer, TopicPartition
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import build_codec
from capi_stream.errors import EventValidationError
from capi_stream.event import ConversionEvent
from capi_stream.kafka.config import KafkaConfig
from consumers.queue import process_unsent_events, queue_capi_event, send_queued_event
from meta_capi import MetaCAPIClient, hash_email
from producers.publisher import EventPublisher
from storage.events import upsert_events
from storage.models import EventStatus, MetaCapiEvent
from tests.support.emulator_fixture import PIXEL_ID, TOKEN, Emulator

TENANT = uuid.uuid4()


def _row(
    event_id: str, *, age: timedelta = timedelta(minutes=5), attempts: int = 0
) -> dict[str, Any]:
    em = hash_email(f"{event_id}@example.com")
    return {
        "tenant_id": TENANT,
        "event_id": event_id,
        "event_name": "Purchase",
        "event_time": datetime.now(UTC) - age,
        "action_source": "other",
        "source": "stripe",
        "source_event_id": event_id,
        "user_email_hash": em,
        "user_data": {"em": [em], "external_id": [hash_email("x@example.com")]},
        "event_value": Decimal("19.99"),
        "currency": "EUR",
        "custom_data": {"order_id": event_id},
        "send_attempts": attempts,
        "status": EventStatus.PENDING,
    }


@pytest.fixture
def client(emulator: Emulator) -> Iterator[MetaCAPIClient]:
    with MetaCAPIClient(PIXEL_ID, TOKEN, graph_url=emulator.base_url) as meta_client:
        yield meta_client


def test_send_queued_event_resends_the_stored_hashed_user_data(
    session_factory: sessionmaker[Session], client: MetaCAPIClient, emulator: Emulator
) -> None:
    with session_factory.begin() as session:
        row_id = upsert_events(session, [_row("q1")])[(TENANT, "q1")].id

    assert send_queued_event(row_id, client, sessions=session_factory) is True

    received = emulator.state.events(PIXEL_ID)
    assert len(received) == 1
    payload = cast(dict[str, Any], received[0].payload)
    assert payload["user_data"]["em"] == [hash_email("q1@example.com")]
    assert payload["custom_data"]["value"] == 19.99
    assert payload["custom_data"]["currency"] == "EUR"
    with session_factory() as session:
        stored = session.get_one(MetaCapiEvent, row_id)
        assert (stored.status, stored.sent_to_meta, stored.send_attempts) == ("sent", True, 1)


def test_process_unsent_events_respects_the_attempt_limit_and_the_7_day_window(
    session_factory: sessionmaker[Session], client: MetaCAPIClient, emulator: Emulator
) -> None:
    with session_factory.begin() as session:
        upsert_events(
            session,
            [
                _row("fresh-1"),
                _row("fresh-2", attempts=2),
                _row("exhausted", attempts=5),
                _row("old", age=timedelta(days=8)),
            ],
        )

    result = process_unsent_events(TENANT, client, sessions=session_factory)

    assert result == {"sent": 2, "failed": 0}
    assert sorted(str(e.payload["event_id"]) for e in emulator.state.events(PIXEL_ID)) == [
        "fresh-1",
        "fresh-2",
    ]
    with session_factory() as session:
        by_id = {r.event_id: r for r in session.query(MetaCapiEvent).all()}
    assert by_id["fresh-2"].send_attempts == 3
    assert by_id["exhausted"].status == EventStatus.PENDING  # never touched: limit reached
    assert by_id["old"].status == EventStatus.EXPIRED
    assert process_unsent_events(TENANT, client, sessions=session_factory) == {
        "sent": 0,
        "failed": 0,
    }


def test_queue_capi_event_publishes_to_the_main_topic(
    kafka_config: KafkaConfig, topic_factory: Any
) -> None:
    topic = topic_factory(partitions=1)
    codec = build_codec()
    event = ConversionEvent.create(
        tenant_id=TENANT,
        source="api",
        source_event_id="order-9",
        event_name="Lead",
        event_time=datetime.now(UTC),
        action_source="other",
        user={"emails": ["jane@example.com"]},
    )
    with EventPublisher(kafka_config, topic, codec) as publisher:
        assert queue_capi_event(TENANT, event, publisher=publisher) == event.event_id
        with pytest.raises(EventValidationError):
            queue_capi_event(uuid.uuid4(), event, publisher=publisher)

    consumer = Consumer(kafka_config.consumer_config("unused"))
    consumer.assign([TopicPartition(topic, 0, 0)])
    try:
        message = consumer.poll(10)
    finally:
        consumer.close()
    assert message is not None and message.error() is None
    assert codec.decode(message.value() or b"") == event
