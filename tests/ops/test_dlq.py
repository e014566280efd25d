"""`capi dlq list|show|redrive` against the real broker and both databases."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from confluent_kafka import Consumer, Message
from confluent_kafka import TopicPartition as KafkaTopicPartition
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import build_codec
from capi_stream.event import ConversionEvent
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.producer import ConfirmedProducer, OutgoingRecord
from capi_stream.kafka.scan import (
    OFFSET_BEGINNING,
    build_scan_consumer,
    list_partitions,
    scan_partitions,
)
from capi_stream.kafka.topics import TopicNames
from ops.cli import cli
from ops.cli.dlq_command import format_instant
from ops.dlq.reader import DeadLetterFilter, build_dead_letter_headers
from ops.dlq.redrive import TOO_OLD_REASON, redrive_group_id
from storage.models import RedriveAudit

RAW_EMAIL = "Jane.Doe@Example.com"
EMAIL_HASH = hashlib.sha256(b"jane.doe@example.com").hexdigest()


def make_event(
    tenant: uuid.UUID, name: str = "Purchase", age: timedelta = timedelta(hours=1)
) -> ConversionEvent:
    return ConversionEvent.create(
        tenant_id=tenant,
        source="stripe",
        source_event_id=uuid.uuid4().hex,
        event_name=name,
        event_time=datetime.now(UTC) - age,
        action_source="website",
        user={"emails": [RAW_EMAIL]},
        client_ip_address="203.0.113.9",
        client_user_agent="UA/1",
    )


def dead_letter(
    topics: TopicNames,
    event: ConversionEvent | None,
    *,
    code: str = "190",
    redrive_count: int | None = None,
    timestamp_ms: int | None = None,
    value: bytes | None = None,
) -> OutgoingRecord:
    """A DLQ record as the worker writes it (headers replaced per hop, UTF-8 strings)."""
    now = int(time.time() * 1000)
    headers = build_dead_letter_headers(
        {
            "capi-attempt": 5,
            "capi-original-topic": topics.main,
            "capi-original-partition": 0,
            "capi-original-offset": 7,
            "capi-original-timestamp": now - 60_000,
            "capi-error-class": "MetaAuthError",
            "capi-error-code": code,
            "capi-error-subcode": 463,
            "capi-error-message": "Error validating access token",
            "capi-tenant-id": str(event.tenant_id) if event else None,
            "capi-event-id": event.event_id if event else None,
            "capi-event-name": event.event_name if event else None,
            "capi-failed-at": now,
            "capi-redrive-count": redrive_count,
        }
    )
    payload = value if value is not None else build_codec().encode(event)  # type: ignore[arg-type]
    key = str(event.tenant_id).encode() if event else b"k"
    return OutgoingRecord(topics.dlq, payload, key=key, headers=headers, timestamp_ms=timestamp_ms)


def read_topic(kafka: KafkaConfig, topic: str) -> list[Message]:
    consumer = build_scan_consumer(kafka)
    try:
        starts = {(topic, p): OFFSET_BEGINNING for p in list_partitions(consumer, topic)}
        with closing(scan_partitions(consumer, starts)) as messages:
            return list(messages)
    finally:
        consumer.close()


@pytest.fixture
def produce(kafka_config: KafkaConfig) -> Callable[[list[OutgoingRecord]], None]:
    producer = ConfirmedProducer(kafka_config.producer_config())
    return producer.send_all


def env_for(kafka: KafkaConfig, topics: TopicNames, db_url: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "TOPIC_MAIN": topics.main,
        "DATABASE_URL": db_url,
        "KAFKA_FETCH_WAIT_MAX_MS": "20",
    }


def run(env: dict[str, str], *args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'unused.db'}"


def test_list_shows_reason_and_filters(
    kafka_config: KafkaConfig, topic_names: TopicNames, produce: Any, sqlite_url: str
) -> None:
    tenant_a, tenant_b = uuid.uuid4(), uuid.uuid4()
    two_hours_ago = int(time.time() * 1000) - 2 * 3600_000
    produce(
        [
            dead_letter(topic_names, make_event(tenant_a)),
            dead_letter(
                topic_names, make_event(tenant_a, "Lead"), code="100", timestamp_ms=two_hours_ago
            ),
            dead_letter(topic_names, make_event(tenant_b)),
        ]
    )
    env = env_for(kafka_config, topic_names, sqlite_url)

    everything = json.loads(run(env, "dlq", "list", "--json").output)
    assert len(everything) == 3
    first = everything[0]
    assert first["reason"].startswith("MetaAuthError ")
    assert first["attempts"] == 5
    assert first["origin"] == f"{topic_names.main}:0:7"
    assert first["dead_lettered_at"].endswith("Z")  # ISO 8601 UTC, not epoch milliseconds

    def count(*args: str) -> int:
        return len(json.loads(run(env, "dlq", "list", "--json", *args).output))

    assert count("--tenant", str(tenant_a)) == 2
    assert count("--event-name", "Lead") == 1
    assert count("--error-code", "190") == 2
    assert count("--older-than", "1h") == 1
    assert count("--newer-than", "1h") == 2
    table = run(env, "dlq", "list").output
    assert "3 dead letter(s)" in table and "MetaAuthError" in table


def test_show_prints_headers_and_hashed_event_only(
    kafka_config: KafkaConfig, topic_names: TopicNames, produce: Any, sqlite_url: str
) -> None:
    event = make_event(uuid.uuid4())
    produce([dead_letter(topic_names, event), dead_letter(topic_names, None, value=b"garbage")])
    env = env_for(kafka_config, topic_names, sqlite_url)
    letters = json.loads(run(env, "dlq", "list", "--json").output)
    decodable = next(x for x in letters if x["event_id"] == event.event_id)
    broken = next(x for x in letters if x["event_id"] is None)

    shown = run(env, "dlq", "show", decodable["ref"]).output
    assert "capi-error-code" in shown and EMAIL_HASH in shown
    # Epoch-millisecond headers read as ISO 8601 UTC, the raw value kept beside them.
    failed_at = int(decodable["headers"]["capi-failed-at"])
    stamp = datetime.fromtimestamp(failed_at / 1000, UTC).isoformat(timespec="milliseconds")
    assert f"{stamp.replace('+00:00', 'Z')} ({failed_at})" in shown
    assert format_instant(failed_at) == stamp.replace("+00:00", "Z")
    assert RAW_EMAIL not in shown and RAW_EMAIL.lower() not in shown
    assert EMAIL_HASH in run(env, "dlq", "show", event.event_id).output
    assert "undecodable" in run(env, "dlq", "show", broken["ref"]).output
    missing = CliRunner().invoke(cli, ["dlq", "show", f"{topic_names.dlq}:0:999"], env=env)
    assert missing.exit_code != 0


def audit_rows(sessions: sessionmaker[Session]) -> list[RedriveAudit]:
    with sessions() as session:
        return list(session.scalars(select(RedriveAudit).order_by(RedriveAudit.dlq_offset)))


def test_redrive_round_trip_with_fresh_budget_and_audit(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    produce: Any,
    db_url: str,
    session_factory: sessionmaker[Session],
) -> None:
    tenant = uuid.uuid4()
    event = make_event(tenant)
    record = dead_letter(topic_names, event)
    produce([record, dead_letter(topic_names, make_event(uuid.uuid4()))])
    env = env_for(kafka_config, topic_names, db_url)

    out = run(env, "dlq", "redrive", "--tenant", str(tenant), "--actor", "alice").output
    assert "redriven=1 refused=0" in out

    main = read_topic(kafka_config, topic_names.main)
    assert len(main) == 1
    assert main[0].value() == record.value and main[0].key() == record.key
    assert main[0].headers() == [("capi-redrive-count", b"1"), ("capi-redriven-by", b"alice")]
    [row] = audit_rows(session_factory)
    assert (row.outcome, row.actor, row.event_id, row.tenant_id) == (
        "redriven",
        "alice",
        event.event_id,
        tenant,
    )
    assert (row.dlq_topic, row.target_topic) == (topic_names.dlq, topic_names.main)

    # The same command again resumes after its committed progress: nothing new.
    again = run(env, "dlq", "redrive", "--tenant", str(tenant), "--actor", "alice").output
    assert "redriven=0" in again and "scanned=0" in again
    # Rescanning skips what the audit says was redriven already.
    rescan = run(env, "dlq", "redrive", "--tenant", str(tenant), "--from-beginning").output
    assert "redriven=0" in rescan and "already-redriven=1" in rescan
    assert len(read_topic(kafka_config, topic_names.main)) == 1


def test_dry_run_changes_nothing(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    produce: Any,
    db_url: str,
    session_factory: sessionmaker[Session],
) -> None:
    produce([dead_letter(topic_names, make_event(uuid.uuid4())) for _ in range(2)])
    env = env_for(kafka_config, topic_names, db_url)

    out = run(env, "dlq", "redrive", "--all", "--dry-run", "--actor", "bob").output
    assert "dry run, nothing sent: would-redrive=2 would-refuse=0" in out
    assert out.count("would redrive") == 2  # the table says it per dead letter too
    assert " redriven=" not in out and "dry-run=" not in out
    assert read_topic(kafka_config, topic_names.main) == []
    assert [r.outcome for r in audit_rows(session_factory)] == ["dry-run", "dry-run"]
    group = redrive_group_id(topic_names.dlq, DeadLetterFilter(), topic_names.main)
    consumer = Consumer(kafka_config.consumer_config(group))
    try:
        partitions = list_partitions(consumer, topic_names.dlq)
        tps = [KafkaTopicPartition(topic_names.dlq, p) for p in partitions]
        assert all(tp.offset < 0 for tp in consumer.committed(tps, timeout=10))
    finally:
        consumer.close()

    assert "redriven=2" in run(env, "dlq", "redrive", "--all").output
    assert len(read_topic(kafka_config, topic_names.main)) == 2


def test_loop_guard_and_meta_window_refuse(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    produce: Any,
    db_url: str,
    session_factory: sessionmaker[Session],
) -> None:
    looping = make_event(uuid.uuid4())
    too_old = make_event(uuid.uuid4(), age=timedelta(days=8))
    fine = make_event(uuid.uuid4())
    produce(
        [
            dead_letter(topic_names, looping, redrive_count=3),
            dead_letter(topic_names, too_old),
            dead_letter(topic_names, fine, redrive_count=1),
        ]
    )
    env = env_for(kafka_config, topic_names, db_url)

    out = run(env, "dlq", "redrive", "--all", "--actor", "carol").output
    assert "redriven=1 refused=2" in out
    by_event = {row.event_id: row for row in audit_rows(session_factory)}
    assert by_event[looping.event_id].outcome == "refused"
    assert "limit 3" in (by_event[looping.event_id].reason or "")
    assert (by_event[too_old.event_id].outcome, by_event[too_old.event_id].reason) == (
        "refused",
        TOO_OLD_REASON,
    )
    assert TOO_OLD_REASON == "older than Meta's 7-day window"
    assert by_event[fine.event_id].outcome == "redriven"
    [sent] = read_topic(kafka_config, topic_names.main)
    assert dict(sent.headers() or [])["capi-redrive-count"] == b"2"
    # A lower --max-redrives refuses even the fine one, counting the audit rows too.
    again = run(
        env,
        "dlq",
        "redrive",
        "--from-beginning",
        "--all",
        "--max-redrives",
        "1",
        "--group",
        "other-progress",
    ).output
    assert "redriven=0" in again


def test_redrive_explicit_refs_at_a_limited_rate(
    kafka_config: KafkaConfig, topic_names: TopicNames, produce: Any, db_url: str
) -> None:
    events = [make_event(uuid.uuid4()) for _ in range(4)]
    produce([dead_letter(topic_names, e) for e in events])
    env = env_for(kafka_config, topic_names, db_url)
    letters = json.loads(run(env, "dlq", "list", "--json").output)
    refs = [x["ref"] for x in letters[:3]]

    started = time.monotonic()
    out = run(env, "dlq", "redrive", *refs, "--rate", "10").output
    assert time.monotonic() - started >= 0.2  # three sends at 10/s take at least 0.2 s
    assert "redriven=3" in out
    assert {m.value() for m in read_topic(kafka_config, topic_names.main)} == {
        build_codec().encode(e)
        for e in events
        if any(x["event_id"] == e.event_id for x in letters[:3])
    }
    bad = CliRunner().invoke(cli, ["dlq", "redrive", "not-a-ref"], env=env)
    assert bad.exit_code != 0
    nothing = CliRunner().invoke(cli, ["dlq", "redrive"], env=env)
    assert nothing.exit_code != 0 and "--all" in nothing.output


# Pure logic (no broker): references, durations and filters.


def test_refs_durations_and_filters() -> None:
    from ops.dlq.reader import RecordRef, parse_duration, parse_ref
    from ops.dlq.records import parse_dead_letter

    assert parse_ref("capi.events.dlq:2:41") == RecordRef("capi.events.dlq", 2, 41)
    assert parse_ref("a:b:1") is None and parse_ref("no-colons") is None
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("7d") == timedelta(days=7)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")

    class Fake:
        def topic(self) -> str:
            return "dlq"

        def partition(self) -> int:
            return 1

        def offset(self) -> int:
            return 5

        def key(self) -> bytes:
            return b"k"

        def value(self) -> bytes:
            return b"v"

        def headers(self) -> list[tuple[str, bytes | None]]:
            return [
                ("capi-tenant-id", b"t1"),
                ("capi-error-code", b"190"),
                ("x", None),
                ("capi-redrive-count", b"2"),
                ("capi-error-class", b"MetaAuthError"),
            ]

        def timestamp(self) -> tuple[int, int]:
            return (1, 1_000_000)

    letter = parse_dead_letter(Fake())
    assert letter.redrive_count == 2 and letter.reason == "MetaAuthError 190"
    now = 1_000_000 + 3600_000
    assert DeadLetterFilter(tenant_id="t1", error_code="190").matches(letter, now)
    assert not DeadLetterFilter(tenant_id="t2").matches(letter, now)
    assert DeadLetterFilter(older_than=timedelta(minutes=59)).matches(letter, now)
    assert not DeadLetterFilter(newer_than=timedelta(minutes=59)).matches(letter, now)
