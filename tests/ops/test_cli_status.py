"""`capi status`: numbers match the seeded rows, offsets and dead letters (both databases)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from click.testing import CliRunner
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames, ensure_topics
from ops.cli import cli
from ops.dlq.reader import build_dead_letter_headers
from storage.events import upsert_events
from storage.models import EventStatus, MetaCapiEvent

H = "a" * 64


def row(tenant: uuid.UUID, name: str, status: str, **columns: Any) -> dict[str, Any]:
    return {
        "tenant_id": tenant,
        "event_id": uuid.uuid4().hex,
        "event_name": name,
        "event_time": datetime.now(UTC),
        "action_source": "website",
        "source": "stripe",
        "source_event_id": uuid.uuid4().hex,
        "status": status,
        "sent_to_meta": status == EventStatus.SENT,
        "user_data": {},
        "user_email_hash": None,
        "user_phone_hash": None,
        "user_fbp": None,
        "user_fbc": None,
        **columns,
    }


def header_list(values: dict[str, str | int]) -> list[tuple[str, str | bytes | None]]:
    return list(build_dead_letter_headers(values))


def minutes_ago(minutes: int) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def seed_rows(sessions: sessionmaker[Session], tenant: uuid.UUID, other: uuid.UUID) -> None:
    user_data = {
        "em": [H],
        "ph": [H],
        "fbp": "fb.1.1.1",
        "client_ip_address": "203.0.113.9",
        "client_user_agent": "UA",
    }
    full = {
        "user_email_hash": H,
        "user_phone_hash": H,
        "user_fbp": "fb.1.1.1",
        "user_data": user_data,
    }
    rows = [
        row(tenant, "Purchase", EventStatus.SENT, **full),
        row(
            tenant,
            "Purchase",
            EventStatus.SENT,
            user_email_hash=H,
            user_data={"client_ip_address": "203.0.113.9"},
        ),
        row(tenant, "Purchase", EventStatus.RETRYING, user_fbc="fb.1.1.abc"),
        row(tenant, "Purchase", EventStatus.DEAD),
        row(tenant, "Lead", EventStatus.PENDING, user_data={"external_id": [H]}),
        row(tenant, "Lead", EventStatus.EXPIRED),
        row(other, "Purchase", EventStatus.SENT, **full),
    ]
    with sessions.begin() as session:
        upsert_events(session, rows)
        # What the worker records on a failed attempt; the dead row failed last.
        failures = {
            EventStatus.RETRYING: ("MetaRetryableError: HTTP 503", minutes_ago(30)),
            EventStatus.DEAD: ("MetaAuthError 190/463: token expired", minutes_ago(5)),
        }
        for status, (error, at) in failures.items():
            session.execute(
                update(MetaCapiEvent)
                .where(MetaCapiEvent.tenant_id == tenant, MetaCapiEvent.status == status)
                .values(send_error=error, last_send_attempt_at=at)
            )


def test_status_reports_seeded_counts_lag_and_dead_letters(
    kafka_config: KafkaConfig, db_url: str, session_factory: sessionmaker[Session]
) -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    seed_rows(session_factory, tenant, other)
    topics = TopicNames(main=f"capi.events-st-{uuid.uuid4().hex[:8]}")
    ensure_topics(kafka_config.admin_config(), topics.all, partitions=3)
    group = f"worker-{uuid.uuid4().hex[:8]}"
    hour_ago = int(time.time() * 1000) - 3600_000
    dead = header_list({"capi-error-class": "MetaAuthError"})
    newest = header_list(
        {
            "capi-error-class": "MetaAuthError",
            "capi-error-code": 190,
            "capi-error-message": "expired",
        }
    )
    producer = Producer(kafka_config.producer_config())
    for _ in range(5):
        producer.produce(topics.main, b"m", partition=0)
    producer.produce(topics.retries[0], b"r", partition=1, timestamp=hour_ago)
    producer.produce(topics.retries[0], b"r", partition=1)
    producer.produce(topics.dlq, b"d", headers=dead, timestamp=hour_ago)
    producer.produce(topics.dlq, b"d", headers=newest)
    assert producer.flush(30) == 0
    committer = Consumer(kafka_config.consumer_config(group))
    try:
        committer.commit(offsets=[KafkaTopicPartition(topics.main, 0, 3)], asynchronous=False)
    finally:
        committer.close()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_config.bootstrap_servers,
        "DATABASE_URL": db_url,
        "TOPIC_MAIN": topics.main,
        "CONSUMER_GROUP": group,
    }

    result = CliRunner().invoke(cli, ["status", "--json"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)

    counts = {(r["tenant_id"], r["event_name"]): r for r in report["events"]}
    purchase = counts[(str(tenant), "Purchase")]
    assert (
        purchase["received"],
        purchase["sent"],
        purchase["retrying"],
        purchase["dead_lettered"],
        purchase["expired"],
    ) == (4, 2, 1, 1, 0)
    assert purchase["oldest_unsent"] is not None
    assert purchase["last_error"] == "MetaAuthError 190/463: token expired"  # the newest
    errors = {
        (e["tenant_id"], e["event_name"], e["status"]): e["error"] for e in report["last_errors"]
    }
    assert errors == {
        (str(tenant), "Purchase", EventStatus.RETRYING): "MetaRetryableError: HTTP 503",
        (str(tenant), "Purchase", EventStatus.DEAD): "MetaAuthError 190/463: token expired",
    }
    lead = counts[(str(tenant), "Lead")]
    assert (lead["received"], lead["pending"], lead["expired"]) == (2, 1, 1)
    quality = {q["tenant_id"]: q for q in report["match_quality"]}[str(tenant)]
    assert quality["total"] == 6
    assert quality["carrying"] == {
        "em": 2,
        "ph": 1,
        "fbc": 1,
        "fbp": 1,
        "external_id": 1,
        "ip_ua": 1,
    }
    assert quality["share"]["em"] == round(2 / 6, 4)

    lags = {(x["topic"], x["partition"]): x for x in report["lag"]}
    main_lag = lags[(topics.main, 0)]
    assert main_lag["oldest_waiting_ms"] is not None  # the record at offset 3
    assert main_lag == {
        "topic": topics.main,
        "partition": 0,
        "committed": 3,
        "end": 5,
        "lag": 2,
        "oldest_waiting_ms": main_lag["oldest_waiting_ms"],
    }
    assert report["retry_depth"] == {topics.retries[0]: 2, **dict.fromkeys(topics.retries[1:], 0)}
    tiers = {t["topic"]: t for t in report["retry_tiers"]}
    assert 3590 <= tiers[topics.retries[0]]["oldest_age_seconds"] <= 3700  # the older record
    assert tiers[topics.retries[1]]["oldest_age_seconds"] is None  # nothing waits there
    main = report["topics"][topics.main]
    assert (main["lag"], main["lagging"], main["partitions"]) == (2, 1, 3)
    dead_letters = report["dead_letters"]
    assert dead_letters["count"] == 2
    assert dead_letters["by_error_class"] == {"MetaAuthError": 2}
    assert dead_letters["newest_reason"] == "MetaAuthError 190: expired"
    assert 3590 <= dead_letters["oldest_age_seconds"] <= 3700

    table = CliRunner().invoke(cli, ["status", "--tenant", str(other)], env=env)
    assert table.exit_code == 0, table.output
    assert "match quality" in table.output and f"lag of group {group}" in table.output
    assert str(tenant) not in table.output

    # One row per topic (not one per partition), human headers, the tiers' oldest filled.
    full = CliRunner().invoke(cli, ["status"], env=env).output
    assert "external id" in full and "external+id" not in full
    lag_rows = [line for line in full.splitlines() if line.startswith("│ capi.events-st-")]
    assert [line.split("│")[1].strip() for line in lag_rows][:5] == [topics.main, *topics.retries]
    assert "1 of 3" in full and "1.0h" in full
    assert "token expired" in full and "MetaAuthError 190: expired" in full
    assert "HTTP 503" in full
    detail = CliRunner().invoke(cli, ["status", "--partitions"], env=env).output
    assert "per partition" in detail
    assert sum(line.startswith(f"│ {topics.main} ") for line in detail.splitlines()) == 3


def test_status_without_kafka_reads_the_database_only(
    db_url: str, session_factory: sessionmaker[Session]
) -> None:
    tenant = uuid.uuid4()
    seed_rows(session_factory, tenant, uuid.uuid4())
    env = {"DATABASE_URL": db_url, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    result = CliRunner().invoke(
        cli,
        ["status", "--json", "--no-kafka", "--tenant", str(tenant)],
        env=env,
        catch_exceptions=False,
    )
    report = json.loads(result.output)
    assert "lag" not in report
    assert sum(r["received"] for r in report["events"]) == 6
