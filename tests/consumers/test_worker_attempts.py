"""``send_attempts`` survives a worker killed between the send and its outcome write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import build_codec
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames
from storage.models import EventStatus
from tests.support.emulator_fixture import Emulator
from tests.support.worker_fixtures import (
    event_rows,
    make_conversion,
    produce,
    read_topic,
    seed_tenant,
    wait_for,
)

CODEC = build_codec()


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    executable = Path(sys.executable).parent / "capi"
    with open(log, "ab") as out:
        return subprocess.Popen(  # noqa: S603 - fixed argv
            [str(executable), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def test_an_attempt_killed_before_its_outcome_is_still_counted(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    db_url: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    tenant_id, pixel = seed_tenant(session_factory)
    # Meta holds the first request (then fails it); the worker waits far longer than that,
    # so it is surely still waiting for Meta's answer when it is killed.
    held = emulator.state.add_fault("timeout", pixel_id=pixel, count=1, delay_seconds=15)
    events = [make_conversion(tenant_id, n, "Lead") for n in range(3)]
    # One key: one partition, so the three events are one batch and one request.
    produce(kafka_config, topic_names.main, [CODEC.encode(e) for e in events], [b"p"] * 3)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_config.bootstrap_servers,
        "KAFKA_SESSION_TIMEOUT_MS": str(kafka_config.session_timeout_ms),
        "KAFKA_HEARTBEAT_INTERVAL_MS": str(kafka_config.heartbeat_interval_ms),
        "KAFKA_FETCH_WAIT_MAX_MS": "20",
        "DATABASE_URL": db_url,
        "DATA_DIR": str(tmp_path),
        "TOPIC_MAIN": topic_names.main,
        "TOPIC_PARTITIONS": "3",
        "CONSUMER_GROUP": group_id,
        "RETRY_DELAYS_SECONDS": "[0.3, 0.3, 0.3, 0.3]",
        "BATCH_MAX_EVENTS": "10",
        "BATCH_MAX_WAIT_SECONDS": "0.5",
        "META_GRAPH_URL": emulator.base_url,
        "META_TIMEOUT_SECONDS": "60",
        "WORKER_METRICS_PORT": "0",
    }
    log = tmp_path / "worker.log"
    process = _start_worker(env, log)
    try:
        wait_for(lambda: held.fired == 1, timeout=60, what="Meta received the request")
        process.send_signal(signal.SIGKILL)  # between the send and its outcome write
        process.wait(10)
        before = event_rows(session_factory, tenant_id)
        # No outcome was written, yet the attempt that reached Meta is counted.
        assert (
            sorted((r.status, r.send_attempts) for r in before) == [(EventStatus.PENDING, 1)] * 3
        ), log.read_text()[-2000:]
        process = _start_worker(env, log)
        wait_for(
            lambda: (
                [r.status for r in event_rows(session_factory, tenant_id)] == [EventStatus.SENT] * 3
            ),
            timeout=60,
            what="all sent after the restart",
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, log.read_text()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    rows = event_rows(session_factory, tenant_id)
    assert [r.send_attempts for r in rows] == [2, 2, 2]  # the killed send and the resend
    print(
        f"\nkill: send_attempts after the kill {[r.send_attempts for r in before]}, "
        f"after the resend {[r.send_attempts for r in rows]}"
    )
    received = sorted(str(e.payload["event_id"]) for e in emulator.state.events(pixel))
    assert received == sorted(e.event_id for e in events)  # the held request took nothing
    assert read_topic(kafka_config, topic_names.dlq, timeout=1) == []
