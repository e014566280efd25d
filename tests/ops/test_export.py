"""`capi export`: a time range of a topic to an Avro file, hashed, on both databases."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import build_codec
from capi_stream.event import ConversionEvent
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.producer import ConfirmedProducer, OutgoingRecord
from capi_stream.kafka.scan import OFFSET_BEGINNING, build_scan_consumer
from capi_stream.kafka.topics import TopicNames
from ops.cli import cli
from ops.export import find_start_offsets
from storage.tenants import upsert_tenant

EMAIL_HASH = hashlib.sha256(b"jane.doe@example.com").hexdigest()
# A German national number, read with the tenant's default country DE.
PHONE_HASH = hashlib.sha256(b"4930123456").hexdigest()


def make_event(tenant: uuid.UUID, name: str) -> ConversionEvent:
    return ConversionEvent.create(
        tenant_id=tenant,
        source="stripe",
        source_event_id=uuid.uuid4().hex,
        event_name=name,
        event_time=datetime.now(UTC),
        action_source="website",
        user={
            "emails": ["Jane.Doe@Example.com"],
            "phones": ["030 123456"],
            "first_name": "Jane",
            "city": "Berlin",
        },
    )


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def test_export_writes_only_the_range_hashed(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    db_url: str,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    with session_factory.begin() as session:
        upsert_tenant(session, tenant, "Acme", "DE")
    codec = build_codec()
    t0 = int(time.time() * 1000) - 3600_000
    minute = 60_000
    placed = [  # (offset in minutes from t0, tenant, event name)
        (-30, tenant, "Purchase"),  # before the range
        (5, tenant, "Purchase"),
        (10, other, "Purchase"),
        (15, tenant, "Lead"),
        (60, tenant, "Purchase"),  # at the range end: excluded
        (90, tenant, "Purchase"),  # after
    ]
    events = [make_event(who, name) for _, who, name in placed]
    records = [
        OutgoingRecord(
            topic_names.main,
            codec.encode(e),
            key=str(e.tenant_id).encode(),
            timestamp_ms=t0 + m * minute,
        )
        for (m, _, _), e in zip(placed, events, strict=True)
    ]
    records.append(OutgoingRecord(topic_names.main, b"not avro", timestamp_ms=t0 + 20 * minute))
    ConfirmedProducer(kafka_config.producer_config()).send_all(records)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_config.bootstrap_servers,
        "DATABASE_URL": db_url,
        "TOPIC_MAIN": topic_names.main,
    }
    window = ["--from", iso(t0), "--to", iso(t0 + 60 * minute)]

    out = tmp_path / "all.avro"
    result = CliRunner().invoke(cli, ["export", *window, "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert "exported 3 event(s)" in result.output and "1 undecodable" in result.output
    with out.open("rb") as handle:
        rows: list[dict[str, Any]] = list(fastavro.reader(handle))  # type: ignore[arg-type]
    assert sorted(r["event_id"] for r in rows) == sorted(e.event_id for e in events[1:4])
    mine = next(r for r in rows if r["event_id"] == events[1].event_id)
    assert mine["user"]["emails"] == [EMAIL_HASH]
    assert mine["user"]["phones"] == [PHONE_HASH]
    assert mine["user"]["first_name"] == hashlib.sha256(b"jane").hexdigest()
    assert b"Jane" not in out.read_bytes() and b"Berlin" not in out.read_bytes()

    narrow = tmp_path / "narrow.avro"
    filtered = ["--tenant", str(tenant), "--event-name", "Purchase", "--out", str(narrow)]
    result = CliRunner().invoke(cli, ["export", *window, *filtered], env=env)
    assert result.exit_code == 0, result.output
    with narrow.open("rb") as handle:
        narrowed: list[dict[str, Any]] = list(fastavro.reader(handle))  # type: ignore[arg-type]
    assert [r["event_id"] for r in narrowed] == [events[1].event_id]

    bad = CliRunner().invoke(
        cli,
        ["export", "--from", iso(t0), "--to", iso(t0), "--out", str(tmp_path / "x.avro")],
        env=env,
    )
    assert bad.exit_code != 0 and not (tmp_path / "x.avro").exists()


def test_timestamp_lookup_is_verified_before_it_is_trusted(
    kafka_config: KafkaConfig, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("export", partitions=1)
    base = int(time.time() * 1000) - 600_000
    ConfirmedProducer(kafka_config.producer_config()).send_all(
        [OutgoingRecord(topic, b"v", timestamp_ms=base + n * 1000) for n in range(10)]
    )
    consumer = build_scan_consumer(kafka_config)
    try:
        starts, trusted = find_start_offsets(consumer, topic, [0], base + 5_000)
    finally:
        consumer.close()
    # Apache Kafka answers offset 5 (record 4 is older: trusted); the embedded broker
    # answers 0, which means "scan from the beginning". Both are correct starting points.
    assert starts == ({0: 5} if trusted else {0: OFFSET_BEGINNING})
