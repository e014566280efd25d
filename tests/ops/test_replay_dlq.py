"""`capi replay` and the DLQ, and one meaning of a time range across `export` and `replay`.

Real broker, both databases, the Meta emulator. A replay over dead-lettered events must
leave exactly one dead letter per event, whatever happens to the event on the way.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames
from ops.cli import cli
from ops.dlq.reader import iter_dead_letters
from ops.replay.run import Outcome
from storage.models import EventStatus
from storage.tenants import META_PROVIDER, upsert_integration
from tests.ops.test_replay import HOUR, four_events, iso, place, replay
from tests.support.emulator_fixture import Emulator
from tests.support.worker_fixtures import (
    TOKEN,
    committed,
    event_rows,
    make_worker_config,
    read_topic,
    running_worker,
    seed_tenant,
    wait_for,
)


def dead_letter_ids(kafka: KafkaConfig, topics: TopicNames) -> list[str]:
    return sorted(d.event_id or "" for d in iter_dead_letters(kafka, topics.dlq))


def test_replay_never_copies_a_dead_letter_again(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    tenant, _ = seed_tenant(session_factory, pixel_id="")  # no Meta integration yet
    t0 = int(time.time() * 1000)
    placed = four_events(tenant, t0)
    place(kafka_config, topic_names.main, placed)
    in_range = sorted(e.event_id for _, e in placed[1:3])
    run = (kafka_config, topic_names, session_factory, emulator, t0)

    first = replay(*run)  # as the worker did on first read: two dead letters
    assert first.by_outcome() == {Outcome.DEAD_TENANT: 2}
    assert (first.dead_lettered, first.not_copied_again) == (2, 0)
    assert dead_letter_ids(kafka_config, topic_names) == in_range

    again = replay(*run)  # the friction: this used to make 2 dead letters 4
    assert again.by_outcome() == {Outcome.STILL_DEAD: 2}
    assert (again.dead_lettered, again.not_copied_again, again.forwarded) == (0, 2, 0)
    assert dead_letter_ids(kafka_config, topic_names) == in_range

    dry = replay(*run, dry_run=True)
    assert dry.by_outcome() == {"would be " + Outcome.STILL_DEAD: 2}

    # Fixed, but Meta fails retriably: no retry hop either (its last hop would dead-letter
    # the event again); the row says dead, the one dead letter stays the place to act.
    pixel = str(uuid.uuid4().int % 10**12)
    with session_factory.begin() as session:
        upsert_integration(
            session, tenant, META_PROVIDER, {"pixel_id": pixel, "capi_access_token": TOKEN}
        )
    emulator.state.add_fault("http_500", pixel_id=pixel)
    failing = replay(*run)
    assert failing.by_outcome() == {Outcome.STILL_DEAD: 2}
    assert (failing.forwarded, failing.not_copied_again) == (0, 2)
    assert {r.status for r in event_rows(session_factory, tenant)} == {EventStatus.DEAD}
    assert read_topic(kafka_config, topic_names.retries[0]) == []
    assert dead_letter_ids(kafka_config, topic_names) == in_range

    emulator.state.clear_faults()
    fixed = replay(*run)  # the cause is gone: the replay sends them, still no new copy
    assert fixed.by_outcome() == {Outcome.SENT: 2}
    assert sorted(str(e.payload["event_id"]) for e in emulator.state.events(pixel)) == in_range
    assert dead_letter_ids(kafka_config, topic_names) == in_range


def test_export_and_replay_share_one_exclusive_end_and_refuse_the_future(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    db_url: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    tenant, _ = seed_tenant(session_factory)
    t0 = int(time.time() * 1000)
    placed = four_events(tenant, t0)  # stamped t0-3h, t0-2h, t0-1h, t0
    place(kafka_config, topic_names.main, placed)
    env = {
        "DATABASE_URL": db_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_config.bootstrap_servers,
        "TOPIC_MAIN": topic_names.main,
        "META_GRAPH_URL": emulator.base_url,
        "WORKER_METRICS_PORT": "0",
    }
    # [t0-2h, t0-1h): the record stamped exactly t0-1h is out for both commands.
    window = ["--from", iso(t0 - 2 * HOUR), "--to", iso(t0 - HOUR)]
    out = tmp_path / "range.avro"
    exported = CliRunner().invoke(cli, ["export", *window, "--out", str(out)], env=env)
    assert exported.exit_code == 0, exported.output
    assert "exported 1 event(s)" in exported.output
    replayed = CliRunner().invoke(cli, ["replay", *window, "--dry-run"], env=env)
    assert replayed.exit_code == 0, replayed.output
    assert [line for line in replayed.output.splitlines() if "in range" in line][0].split("│")[
        2
    ].strip() == "1"

    future = datetime.now(UTC) + timedelta(days=1)
    ahead = ["--from", future.isoformat(), "--to", (future + timedelta(hours=1)).isoformat()]
    for command in (["export", *ahead, "--out", str(tmp_path / "f.avro")], ["replay", *ahead]):
        refused = CliRunner().invoke(cli, command, env=env)
        assert refused.exit_code == 2, refused.output
        assert "is in the future" in refused.output and "--from" in refused.output
    empty = CliRunner().invoke(cli, ["replay", *window[:2], "--to", window[1]], env=env)
    assert empty.exit_code == 2 and "must be after --from" in empty.output
    assert not (tmp_path / "f.avro").exists()


def test_the_worker_dead_letters_two_and_replays_keep_them_two(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    db_url: str,
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    """The friction as a user met it: a revoked token, the worker dead-letters 2 events,
    then `capi replay` over their range, twice: still 2 dead letters, no retry hop."""
    revoked = "EAAB-revoked-for-replay"
    tenant, _ = seed_tenant(session_factory, token=revoked)
    emulator.state.add_invalid_token(revoked)
    t0 = int(time.time() * 1000)
    placed = four_events(tenant, t0)
    place(kafka_config, topic_names.main, placed)
    config = make_worker_config(group_id, emulator.base_url)
    with running_worker(kafka_config, topic_names, session_factory, config):
        wait_for(
            lambda: committed(kafka_config, group_id, topic_names.main) == 4,
            timeout=60,
            what="the worker handled the four events",
        )
    every = sorted(e.event_id for _, e in placed)
    assert dead_letter_ids(kafka_config, topic_names) == every
    env = {
        "DATABASE_URL": db_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_config.bootstrap_servers,
        "TOPIC_MAIN": topic_names.main,
        "META_GRAPH_URL": emulator.base_url,
        "CONSUMER_GROUP": group_id,
        "WORKER_METRICS_PORT": "0",
    }
    window = ["--from", iso(t0 - 2 * HOUR), "--to", iso(t0)]  # the middle two
    for _ in range(2):
        result = CliRunner().invoke(cli, ["replay", *window], env=env)
        assert result.exit_code == 0, result.output
        assert "left in the DLQ" in result.output
    assert dead_letter_ids(kafka_config, topic_names) == every
    assert read_topic(kafka_config, topic_names.retries[0], timeout=1) == []
