"""The publisher library and `capi publish` against the real broker."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from capi_stream.avro.codec import build_codec
from capi_stream.errors import DependencyUnavailableError, EventValidationError
from capi_stream.event import ConversionEvent, build_event_id
from capi_stream.kafka.broker import find_free_port
from capi_stream.kafka.config import KafkaConfig
from capi_stream.settings import CapiSettings
from producers.cli import publish
from producers.publisher import AsyncEventPublisher, EventPublisher, coerce_event, publish_event
from tests.support.webhook_fixtures import read_topic

HASHED_EMAIL = "a" * 64


def _event_fields(tenant_id: uuid.UUID, key: str) -> dict[str, object]:
    return {
        "tenant_id": str(tenant_id),
        "source": "api",
        "source_event_id": key,
        "event_name": "Purchase",
        "event_time": datetime.now(UTC).isoformat(),
        "action_source": "other",
        "user": {"emails": [HASHED_EMAIL]},
        "custom_data": {"value": "12.50", "currency": "eur"},
    }


def test_sync_publisher_derives_event_id_and_keys_by_person(
    kafka_config: KafkaConfig, topic_factory: object
) -> None:
    topic = topic_factory("pub")  # type: ignore[operator]
    tenant = uuid.uuid4()
    with EventPublisher(kafka_config, topic, build_codec(None, topic)) as publisher:
        event = publisher.publish(_event_fields(tenant, "order-1"))
    assert event.event_id == build_event_id(tenant, "api", "order-1")
    [record] = read_topic(kafka_config, topic)
    assert record.key == f"{tenant}:em:{HASHED_EMAIL}".encode()  # the hash the worker links on
    assert record.event == event
    assert record.event.user.emails == [HASHED_EMAIL]  # already hashed: kept as is


def test_async_publisher_acks_and_times_out(
    kafka_config: KafkaConfig, topic_factory: object
) -> None:
    topic = topic_factory("apub")  # type: ignore[operator]
    event = coerce_event(_event_fields(uuid.uuid4(), "order-2"))
    publisher = AsyncEventPublisher(kafka_config, topic, build_codec(None, topic))
    try:
        asyncio.run(publisher.publish(event))
    finally:
        publisher.close()
    assert [r.event.event_id for r in read_topic(kafka_config, topic)] == [event.event_id]

    nowhere = KafkaConfig(bootstrap_servers=f"127.0.0.1:{find_free_port()}")
    dead = AsyncEventPublisher(nowhere, topic, build_codec(None, topic), timeout_seconds=0.5)
    try:
        with pytest.raises(DependencyUnavailableError):
            asyncio.run(dead.publish(event))
    finally:
        dead.close(0.1)


def test_invalid_event_is_a_validation_error() -> None:
    with pytest.raises(EventValidationError, match="event_name"):
        coerce_event({"tenant_id": str(uuid.uuid4()), "source": "api", "source_event_id": "x"})
    with pytest.raises(EventValidationError, match="tenant_id"):
        coerce_event({"source": "api"})
    # A lone surrogate (JSON's "\ud800" escape) has no UTF-8 form, so no event id either.
    with pytest.raises(EventValidationError, match="valid Unicode"):
        coerce_event(_event_fields(uuid.uuid4(), "order-\ud800"))


def test_publish_event_convenience(
    kafka_config: KafkaConfig, topic_factory: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = topic_factory("conv")  # type: ignore[operator]
    settings = CapiSettings(
        kafka_bootstrap_servers=kafka_config.bootstrap_servers, topic_main=topic
    )
    event = publish_event(_event_fields(uuid.uuid4(), "order-3"), settings=settings)
    assert isinstance(event, ConversionEvent)
    assert [r.event.event_id for r in read_topic(kafka_config, topic)] == [event.event_id]


def test_capi_publish_command(
    kafka_config: KafkaConfig,
    topic_factory: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = topic_factory("cli")  # type: ignore[operator]
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_config.bootstrap_servers)
    monkeypatch.setenv("TOPIC_MAIN", topic)
    tenant = uuid.uuid4()
    path = tmp_path / "event.json"
    path.write_text(json.dumps(_event_fields(tenant, "order-4")))

    result = CliRunner().invoke(publish, [str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == build_event_id(tenant, "api", "order-4")
    assert len(read_topic(kafka_config, topic)) == 1

    bad = CliRunner().invoke(publish, ["-"], input=json.dumps({"tenant_id": str(tenant)}))
    assert bad.exit_code != 0
    assert "source" in bad.output
