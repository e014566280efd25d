"""`capi replay`: a time range re-processed on the real broker, both databases, the emulator.

Records carry explicit CreateTime stamps (t0-3h, t0-2h, t0-1h, t0) and the replay range is
[t0-2h30m, t0-30m), so exactly the t0-2h and t0-1h records are in range. On the embedded
broker the timestamp lookup answers 0 and the replay scans from the beginning; on Kafka the
verified lookup is used. Both must give the same result.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from click.testing import CliRunner
from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import build_codec
from capi_stream.event import ConversionEvent
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.producer import ConfirmedProducer, OutgoingRecord
from capi_stream.kafka.scan import OFFSET_BEGINNING, build_scan_consumer
from capi_stream.kafka.topics import TopicNames
from ops.cli import cli
from ops.replay.run import Outcome, ReplayRequest, ReplaySummary, replay_events
from ops.replay.scan import plan_range, read_range
from storage.models import EventStatus
from tests.support.emulator_fixture import Emulator
from tests.support.worker_fixtures import (
    RAW_EMAIL,
    committed,
    event_rows,
    make_conversion,
    make_worker_config,
    read_topic,
    seed_tenant,
    sha256,
)

CODEC = build_codec()
MINUTE = 60_000
HOUR = 60 * MINUTE
LIVE_GROUP = "capi-worker-live"


def place(
    kafka: KafkaConfig, topic: str, placed: Sequence[tuple[int, ConversionEvent | bytes]]
) -> None:
    """Produce each event (or raw bytes) with the record timestamp given (ms), in order."""
    records = [
        OutgoingRecord(topic, CODEC.encode(e), key=e.event_id.encode(), timestamp_ms=stamp)
        if isinstance(e, ConversionEvent)
        else OutgoingRecord(topic, e, key=b"raw", timestamp_ms=stamp)
        for stamp, e in sorted(placed, key=lambda pair: pair[0])
    ]
    ConfirmedProducer(kafka.producer_config()).send_all(records)


def four_events(tenant: uuid.UUID, t0: int) -> list[tuple[int, ConversionEvent]]:
    names = ("Purchase", "Lead", "Purchase", "Lead")
    return [(t0 - (3 - n) * HOUR, make_conversion(tenant, n, name)) for n, name in enumerate(names)]


def replay(
    kafka: KafkaConfig,
    topics: TopicNames,
    sessions: sessionmaker[Session],
    emulator: Emulator,
    t0: int,
    **options: Any,
) -> ReplaySummary:
    request = ReplayRequest(
        topic=topics.main, start_ms=t0 - 150 * MINUTE, end_ms=t0 - 30 * MINUTE, **options
    )
    return replay_events(
        kafka=kafka,
        topics=topics,
        sessions=sessions,
        codec=CODEC,
        config=make_worker_config(LIVE_GROUP, emulator.base_url),
        request=request,
    )


def sent_ids(emulator: Emulator, pixel: str) -> list[str]:
    return sorted(str(e.payload["event_id"]) for e in emulator.state.events(pixel))


def test_replay_sends_only_the_range_once_and_resends_on_demand(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    tenant, pixel = seed_tenant(session_factory)
    t0 = int(time.time() * 1000)
    placed = four_events(tenant, t0)
    place(kafka_config, topic_names.main, placed)
    in_range = sorted(e.event_id for _, e in placed[1:3])
    run = (kafka_config, topic_names, session_factory, emulator, t0)

    first = replay(*run)
    assert (first.in_range, first.matched) == (2, 2)
    assert first.scanned >= 3  # the stop record of a partition is read, never handled
    assert first.by_outcome() == {Outcome.SENT: 2}
    assert sent_ids(emulator, pixel) == in_range
    rows = event_rows(session_factory, tenant)
    assert sorted(r.event_id for r in rows) == in_range
    assert {(r.status, r.sent_to_meta, r.send_attempts) for r in rows} == {("sent", True, 1)}

    again = replay(*run)  # idempotent: nothing is sent twice
    assert again.by_outcome() == {Outcome.ALREADY_SENT: 2}
    assert sent_ids(emulator, pixel) == in_range

    forced = replay(*run, resend=True)  # same event_id: Meta deduplicates within 48 h
    assert forced.by_outcome() == {Outcome.RESENT: 2}
    assert sent_ids(emulator, pixel) == sorted(in_range * 2)
    assert {r.status for r in event_rows(session_factory, tenant)} == {"sent"}


def test_dry_run_changes_nothing_and_no_send_rebuilds_rows(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    tenant, pixel = seed_tenant(session_factory)
    no_meta, _ = seed_tenant(session_factory, pixel_id="")
    t0 = int(time.time() * 1000)
    placed = four_events(tenant, t0)
    placed.append((t0 - HOUR - MINUTE, make_conversion(no_meta, 7, "Lead")))
    place(kafka_config, topic_names.main, placed)
    run = (kafka_config, topic_names, session_factory, emulator, t0)

    dry = replay(*run, dry_run=True)
    assert dry.by_outcome() == {"would be " + Outcome.SENT: 2, "would be " + Outcome.DEAD_TENANT: 1}
    assert dry.outcomes[(str(tenant), "Purchase", "would be " + Outcome.SENT)] == 1
    assert event_rows(session_factory, tenant) == [] and emulator.state.events() == []

    recorded = replay(*run, no_send=True)
    assert recorded.by_outcome() == {Outcome.RECORDED: 3}
    assert emulator.state.events() == []
    rows = {r.event_id: r for r in event_rows(session_factory, tenant)}
    assert sorted(rows) == sorted(e.event_id for _, e in placed[1:3])
    for n, (_, event) in enumerate(placed[1:3], start=1):
        row = rows[event.event_id]
        assert (row.status, row.sent_to_meta, row.send_attempts) == (EventStatus.SKIPPED, False, 0)
        assert row.user_email_hash == sha256(RAW_EMAIL.format(n=n).strip().lower())
    assert [r.status for r in event_rows(session_factory, no_meta)] == [EventStatus.SKIPPED]

    sent = replay(*run)  # skipped rows are not sent yet: a real replay sends them
    assert sent.by_outcome() == {Outcome.SENT: 2, Outcome.DEAD_TENANT: 1}
    assert sent_ids(emulator, pixel) == sorted(rows)
    dead = read_topic(kafka_config, topic_names.dlq, at_least=1)
    assert len(dead) == 1 and sent.forwarded == 1
    assert sent.failed_by_class == {"ConfigurationError": 1}


def test_filters_and_expired_events(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    tenant, pixel = seed_tenant(session_factory)
    other, other_pixel = seed_tenant(session_factory)
    t0 = int(time.time() * 1000)
    stamp = t0 - HOUR
    old_time = datetime.now(UTC) - timedelta(days=8)
    placed = [
        (stamp, make_conversion(tenant, 1, "Purchase")),
        (stamp + 1, make_conversion(tenant, 2, "Lead")),
        (stamp + 2, make_conversion(tenant, 3, "AddToCart")),
        (stamp + 3, make_conversion(other, 4, "Purchase")),
        (stamp + 4, make_conversion(tenant, 5, "Purchase", event_time=old_time)),
        (t0, make_conversion(tenant, 6, "Purchase")),  # after the range
    ]
    place(kafka_config, topic_names.main, [*placed, (stamp + 5, b"\x00not avro")])
    summary = replay(
        kafka_config,
        topic_names,
        session_factory,
        emulator,
        t0,
        tenant_ids=frozenset({tenant}),
        event_names=frozenset({"Purchase", "Lead"}),
    )
    assert (summary.in_range, summary.matched, summary.undecodable) == (6, 3, 1)
    assert summary.by_outcome() == {Outcome.SENT: 2, Outcome.EXPIRED: 1}
    assert summary.outcomes[(str(tenant), "Purchase", Outcome.EXPIRED)] == 1
    assert sent_ids(emulator, pixel) == sorted(e.event_id for _, e in placed[:2])
    assert emulator.state.events(other_pixel) == []
    rows = {r.event_id: r for r in event_rows(session_factory, tenant)}
    expired = rows[placed[4][1].event_id]
    assert (expired.status, expired.sent_to_meta) == (EventStatus.EXPIRED, False)
    assert len(rows) == 3 and event_rows(session_factory, other) == []
    # The undecodable record is counted, not dead-lettered again (the worker did that).
    assert summary.forwarded == 0 and read_topic(kafka_config, topic_names.dlq) == []


def group_offsets(kafka: KafkaConfig, group: str) -> dict[tuple[str, int], int]:
    admin = AdminClient(kafka.admin_config())
    futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
    result = futures[group].result(10)
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}


def test_cli_replay_leaves_the_live_group_alone(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    db_url: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    tenant, pixel = seed_tenant(session_factory)
    t0 = int(time.time() * 1000)
    placed = four_events(tenant, t0)
    place(kafka_config, topic_names.main, placed)
    live_group = f"live-{uuid.uuid4().hex[:8]}"
    member = KafkaConsumer(kafka_config.consumer_config(live_group))
    member.commit(
        offsets=[TopicPartition(topic_names.main, p, 1) for p in range(3)], asynchronous=False
    )
    before = group_offsets(kafka_config, live_group)
    env = {
        "DATABASE_URL": db_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_config.bootstrap_servers,
        "TOPIC_MAIN": topic_names.main,
        "META_GRAPH_URL": emulator.base_url,
        "CONSUMER_GROUP": live_group,
        "WORKER_METRICS_PORT": "0",
    }
    window = ["--from", iso(t0 - 150 * MINUTE), "--to", iso(t0 - 30 * MINUTE)]
    try:
        refused = CliRunner().invoke(cli, ["replay", *window, "--group", live_group], env=env)
        assert refused.exit_code == 2 and "live worker group" in refused.output

        dry = CliRunner().invoke(cli, ["replay", *window, "--dry-run"], env=env)
        assert dry.exit_code == 0, dry.output
        assert "dry run: nothing changed" in dry.output and "would be sent" in dry.output
        assert emulator.state.events() == []

        backfill = f"capi-replay-{uuid.uuid4().hex[:8]}"
        result = CliRunner().invoke(cli, ["replay", *window, "--group", backfill], env=env)
        assert result.exit_code == 0, result.output
        assert "replay summary" in result.output and "by tenant and event name" in result.output
        assert "already sent (skipped)" in result.output  # core outcomes show even at 0
        assert sent_ids(emulator, pixel) == sorted(e.event_id for _, e in placed[1:3])
        # The backfill group holds its progress: through the last record of the range.
        assert committed(kafka_config, backfill, topic_names.main) == 3
        # Run again under the same group: it resumes after the range, nothing left to do.
        resumed = replay(
            kafka_config, topic_names, session_factory, emulator, t0, group_id=backfill
        )
        assert (resumed.in_range, resumed.matched) == (0, 0)
        assert group_offsets(kafka_config, live_group) == before
    finally:
        member.close()


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


class KafkaLookup:
    """A real consumer whose ``offsets_for_times`` answers as Apache Kafka does (the
    embedded broker always answers 0), so the trusted-lookup path runs on the real broker."""

    def __init__(self, consumer: Any, stamps: Sequence[int]) -> None:
        self._consumer = consumer
        self._stamps = stamps

    def offsets_for_times(self, partitions: list[TopicPartition], timeout: float) -> Any:
        answers = []
        for tp in partitions:
            later = [n for n, stamp in enumerate(self._stamps) if stamp >= tp.offset]
            answers.append(TopicPartition(tp.topic, tp.partition, later[0] if later else -1))
        return answers

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)


def test_a_trusted_timestamp_lookup_seeks_and_sizes_the_range(
    kafka_config: KafkaConfig, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("replay", partitions=1)
    base = int(time.time() * 1000) - 600_000
    stamps = [base + n * 1000 for n in range(10)]
    ConfirmedProducer(kafka_config.producer_config()).send_all(
        [OutgoingRecord(topic, b"v", timestamp_ms=stamp) for stamp in stamps]
    )
    consumer = build_scan_consumer(kafka_config)
    lookup = cast(KafkaConsumer, KafkaLookup(consumer, stamps))
    try:
        plan = plan_range(lookup, topic, [0], base + 3000, base + 6000)
        # [base+3s, base+6s): the end is excluded, as in `capi export`.
        assert (plan.starts, plan.lookup_used, plan.expected) == ({(topic, 0): 3}, True, 3)
        offsets = [m.offset() for m in read_range(lookup, plan.starts, base + 6000)]
        assert offsets == [3, 4, 5, 6]  # 6, stamped at the range end, is the stop
        # A range reaching past the last record: the size runs to the (Fetch) log end.
        tail = plan_range(lookup, topic, [0], base + 8000, base + 60_000)
        assert (tail.starts, tail.expected) == ({(topic, 0): 8}, 2)
        # The embedded broker's own answer (0) is never trusted: scan from the beginning.
        own = plan_range(consumer, topic, [0], base + 3000, base + 6000)
        if not own.lookup_used:
            assert (own.starts, own.expected) == ({(topic, 0): OFFSET_BEGINNING}, None)
    finally:
        consumer.close()


def test_failures_are_forwarded_like_the_worker_does(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    tenant, pixel = seed_tenant(session_factory)
    emulator.state.add_fault("http_500", pixel_id=pixel)  # until cleared
    t0 = int(time.time() * 1000)
    place(kafka_config, topic_names.main, four_events(tenant, t0))
    summary = replay(kafka_config, topic_names, session_factory, emulator, t0)
    assert summary.by_outcome() == {Outcome.RETRYING: 2}
    assert summary.failed_by_class == {"MetaRetryableError": 2} and summary.forwarded == 2
    retried = read_topic(kafka_config, topic_names.retries[0], at_least=2)
    assert len(retried) == 2  # the live worker owns them from here
    assert {r.status for r in event_rows(session_factory, tenant)} == {EventStatus.RETRYING}
