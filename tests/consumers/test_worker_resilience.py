"""Group behaviour and failures that are not the events' fault: nothing lost, no attempt burned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import build_codec
from capi_stream.database import build_engine, build_session_factory
from capi_stream.kafka.broker import EmbeddedBroker, find_free_port
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.producer import ConfirmedProducer, OutgoingRecord
from capi_stream.kafka.topics import TopicNames, ensure_topics
from consumers.headers import Failure, HopContext, Origin, build_headers
from consumers.pipeline.redact import hash_identity
from storage.models import EventStatus
from tests.conftest import test_secret_box
from tests.support.emulator_fixture import Emulator
from tests.support.worker_fixtures import (
    TcpProxy,
    committed,
    event_rows,
    make_conversion,
    make_worker_config,
    produce,
    produce_events,
    read_topic,
    running_worker,
    seed_tenant,
    wait_for,
)

CODEC = build_codec()


def _all_sent(sessions: sessionmaker[Session], tenant_id: object, count: int) -> bool:
    rows = event_rows(sessions, tenant_id)  # type: ignore[arg-type]
    return len(rows) == count and all(r.status == EventStatus.SENT for r in rows)


def test_two_workers_in_one_group_split_the_partitions(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    tenant_id, pixel = seed_tenant(session_factory)
    config = make_worker_config(group_id, emulator.base_url, tiers="main", metrics_port=None)
    with (
        running_worker(kafka_config, topic_names, session_factory, config) as first,
        running_worker(kafka_config, topic_names, session_factory, config) as second,
    ):
        wait_for(
            lambda: (
                first.worker.rebalance.assigned
                and second.worker.rebalance.assigned
                and len(first.worker.rebalance.assigned | second.worker.rebalance.assigned) == 3
            ),
            what="both workers assigned",
        )
        assert not first.worker.rebalance.assigned & second.worker.rebalance.assigned
        events = [make_conversion(tenant_id, n, "Lead") for n in range(30)]
        produce_events(kafka_config, topic_names.main, events, CODEC)
        wait_for(lambda: _all_sent(session_factory, tenant_id, 30), what="30 sent")
        consumed = [
            sum(
                s.value
                for m in w.worker.metrics.consumed.collect()
                for s in m.samples
                if s.name.endswith("_total")
            )
            for w in (first, second)
        ]
    assert all(count > 0 for count in consumed), consumed
    assert sum(consumed) >= 30  # a rebalance before a commit re-delivers: at least once
    assert {e.payload["event_id"] for e in emulator.state.events(pixel)} == {
        e.event_id for e in events
    }


def _capi_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    executable = Path(sys.executable).parent / "capi"
    with open(log, "ab") as out:
        return subprocess.Popen(  # noqa: S603 - fixed argv
            [str(executable), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _worker_env(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    db_url: str,
    graph_url: str,
    tmp_path: Path,
    **extra: str,
) -> dict[str, str]:
    return {
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
        "BATCH_MAX_EVENTS": "5",
        "BATCH_MAX_WAIT_SECONDS": "0.1",
        "META_GRAPH_URL": graph_url,
        "WORKER_METRICS_PORT": "0",
        **extra,
    }


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_cli_exits_non_zero_when_the_dead_letter_limit_is_reached(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    db_url: str,
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    produce(kafka_config, topic_names.main, [b"junk-%d" % n for n in range(4)])
    env = _worker_env(
        kafka_config,
        topic_names,
        group_id,
        db_url,
        emulator.base_url,
        tmp_path,
        DLQ_LIMIT_COUNT="2",
        BATCH_MAX_EVENTS="10",
        BATCH_MAX_WAIT_SECONDS="0.5",
    )
    log = tmp_path / "worker.log"
    process = _capi_worker(env, log)
    try:
        code = process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 3, log.read_text()[-2000:]
    assert "dead-letter limit reached" in log.read_text()
    assert len(read_topic(kafka_config, topic_names.dlq, at_least=3)) >= 3


def test_a_killed_worker_process_loses_nothing_after_restart(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    db_url: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    tenant_id, pixel = seed_tenant(session_factory)
    emulator.state.add_fault("slow", pixel_id=pixel, delay_seconds=0.3)  # batches take time
    events = [make_conversion(tenant_id, n, "Lead") for n in range(60)]
    produce_events(kafka_config, topic_names.main, events, CODEC)
    env = _worker_env(kafka_config, topic_names, group_id, db_url, emulator.base_url, tmp_path)
    log = tmp_path / "worker.log"
    process = _capi_worker(env, log)
    try:
        wait_for(lambda: len(emulator.state.events(pixel)) >= 5, what="a first batch sent")
        process.send_signal(signal.SIGKILL)  # mid-run: a batch is in flight at Meta
        process.wait(10)
        assert not _all_sent(session_factory, tenant_id, 60)
        process = _capi_worker(env, log)
        wait_for(lambda: _all_sent(session_factory, tenant_id, 60), timeout=60, what="all sent")
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, log.read_text()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    received = [e.payload["event_id"] for e in emulator.state.events(pixel)]
    assert set(received) == {e.event_id for e in events}  # duplicates only of the same id
    assert '"msg": "worker stopped"' in log.read_text()


@pytest.fixture
def pg_proxy(db_url: str) -> Iterator[tuple[TcpProxy, str]]:
    url = make_url(db_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    try:
        yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
    finally:
        proxy.close()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_database_outage_pauses_then_resumes_without_loss_or_burnt_attempts(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
    pg_proxy: tuple[TcpProxy, str],
) -> None:
    proxy, proxied_url = pg_proxy
    engine = build_engine(proxied_url)
    worker_sessions = build_session_factory(engine, test_secret_box())
    tenant_id, pixel = seed_tenant(session_factory)
    config = make_worker_config(group_id, emulator.base_url, tenant_cache_ttl_seconds=60.0)
    before = [make_conversion(tenant_id, n, "Lead") for n in range(5)]
    during = [make_conversion(tenant_id, n, "Lead") for n in range(5, 10)]
    try:
        with running_worker(kafka_config, topic_names, worker_sessions, config) as running:
            produce_events(kafka_config, topic_names.main, before, CODEC)
            wait_for(lambda: _all_sent(session_factory, tenant_id, 5), what="first 5 sent")
            proxy.cut()
            produce_events(kafka_config, topic_names.main, during, CODEC)
            wait_for(lambda: running.worker.metrics.outages._value.get() >= 1, what="outage")
            control = running.worker._control
            assert control is not None and control.in_outage
            assert len(event_rows(session_factory, tenant_id)) == 5
            proxy.restore()
            wait_for(lambda: _all_sent(session_factory, tenant_id, 10), what="all 10 sent")
            assert not control.in_outage
    finally:
        engine.dispose()
    rows = event_rows(session_factory, tenant_id)
    assert {r.send_attempts for r in rows} == {1}  # the outage burned no attempt
    assert read_topic(kafka_config, topic_names.dlq, timeout=1) == []
    assert read_topic(kafka_config, topic_names.retries[0], timeout=1) == []
    assert sorted(str(e.payload["event_id"]) for e in emulator.state.events(pixel)) == sorted(
        e.event_id for e in before + during
    )


@pytest.fixture
def broker_behind_proxy(tmp_path: Path) -> Iterator[tuple[TcpProxy, KafkaConfig]]:
    """A broker of its own that clients reach only through a proxy the test can cut.

    The broker advertises the proxy's port, so every connection (metadata, partition leader,
    group coordinator) goes through it; the broker itself keeps running and keeps its data.
    """
    broker_port = find_free_port()
    proxy = TcpProxy("127.0.0.1", broker_port)
    broker = EmbeddedBroker(
        port=broker_port, advertised_port=proxy.port, log_path=tmp_path / "tansu.log"
    )
    try:
        broker.start()
        # A short delivery timeout, so a forward to an unreachable broker fails in seconds.
        kafka = KafkaConfig(
            broker.bootstrap_servers,
            session_timeout_ms=2000,
            heartbeat_interval_ms=200,
            fetch_wait_max_ms=20,
            extra={"message.timeout.ms": "3000"},
        )
        yield proxy, kafka
    finally:
        proxy.close()
        broker.stop()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_broker_outage_while_forwarding_loses_nothing_and_burns_no_attempt(
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
    broker_behind_proxy: tuple[TcpProxy, KafkaConfig],
) -> None:
    proxy, kafka = broker_behind_proxy
    topics = TopicNames(main="capi.events")
    ensure_topics(kafka.admin_config(), topics.all, partitions=3)
    tenant_id, pixel = seed_tenant(session_factory)
    events = [make_conversion(tenant_id, n, "Lead") for n in range(6)]
    # Meta times out on the first request, so its events must be forwarded to retry tier 1:
    # the proxy is cut while Meta holds that request, so the forward cannot be acknowledged.
    emulator.state.add_fault("timeout", pixel_id=pixel, count=1, delay_seconds=2.5)
    produce_events(kafka, topics.main, events, CODEC)
    config = make_worker_config(group_id, emulator.base_url)
    with running_worker(kafka, topics, session_factory, config) as running:
        wait_for(lambda: len(event_rows(session_factory, tenant_id)) == 6, what="rows upserted")
        proxy.cut()
        wait_for(lambda: running.worker.metrics.outages._value.get() >= 1, what="outage")
        assert emulator.state.events(pixel) == []
        proxy.restore()
        wait_for(lambda: _all_sent(session_factory, tenant_id, 6), timeout=60, what="all sent")
        wait_for(lambda: committed(kafka, group_id, topics.main) == 6, what="commit")
    rows = event_rows(session_factory, tenant_id)
    # Meta saw two requests, and send_attempts counts both (it says how often the event went
    # to Meta); but the first attempt never finished (its forward was not acknowledged), so
    # the replay re-ran attempt 1 and sent it: the outage burned no attempt (nothing on a tier).
    assert {r.send_attempts for r in rows} == {2}
    outcomes = [r.outcome for r in emulator.state.requests(pixel)]
    assert outcomes == ["fault:timeout", "accepted"]
    assert sorted(str(e.payload["event_id"]) for e in emulator.state.events(pixel)) == sorted(
        e.event_id for e in events
    )
    # The un-acknowledged forward was dropped, not left to land beside the replay.
    assert read_topic(kafka, topics.retries[0], timeout=1) == []
    assert read_topic(kafka, topics.dlq, timeout=1) == []


def test_waiting_tier_records_survive_a_rebalance_and_never_run_early(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    tenant_id, pixel = seed_tenant(session_factory)
    due_ms = int(time.time() * 1000) + 3000
    events = [hash_identity(make_conversion(tenant_id, n, "Lead"), "US") for n in range(6)]
    context = HopContext(attempt=2, due_ms=None, origin=Origin(topic_names.main, 0, 0, 0))
    producer = ConfirmedProducer(kafka_config.producer_config())
    producer.send_all(
        [
            OutgoingRecord(
                topic_names.retries[0],
                CODEC.encode(e),
                key=e.event_id.encode(),
                headers=build_headers(
                    context,
                    attempt=2,
                    due_ms=due_ms,
                    failed_at_ms=due_ms - 3000,
                    failure=Failure("MetaRetryableError", "5xx"),
                ),
            )
            for e in events
        ]
    )
    producer.close()
    config = make_worker_config(group_id, emulator.base_url, metrics_port=None)
    with running_worker(kafka_config, topic_names, session_factory, config) as first:
        wait_for(
            lambda: len(first.worker._control.book) > 0 if first.worker._control else False,
            what="tier partitions paused until due",
        )
        with running_worker(kafka_config, topic_names, session_factory, config) as second:
            wait_for(lambda: second.worker.rebalance.assigned, what="the second worker assigned")
            wait_for(lambda: _all_sent(session_factory, tenant_id, 6), what="all sent")
    received = emulator.state.events(pixel)
    assert {e.payload["event_id"] for e in received} == {e.event_id for e in events}
    assert min(e.received_at for e in received) * 1000 >= due_ms  # never before due
    assert {r.send_attempts for r in event_rows(session_factory, tenant_id)} == {2}
