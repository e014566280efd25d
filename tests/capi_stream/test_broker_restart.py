"""The Kafka edge survives its broker restarting (memory storage: everything on it is lost).

Each test runs a broker of its own, kills it with SIGKILL under load and starts it again
on the same port with the topics re-created, as an operator's restart would. Before the
fix, ``capi serve``'s idempotent producer stayed stuck (UNKNOWN_PRODUCER_ID) and answered
503 forever while ``/readyz`` said ready, and a running worker's forwards timed out
forever. Waits are deadline loops on a condition; the deadlines are generous for a busy
2-core machine and still prove recovery. The figures are printed (``-s`` shows them).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import build_codec
from capi_stream.database import build_engine, build_session_factory
from capi_stream.errors import ClientUnrecoverableError
from capi_stream.kafka.broker import EmbeddedBroker
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.lifecycle import RecoveryPolicy
from capi_stream.kafka.topics import TopicNames, ensure_topics
from consumers import headers as h
from consumers.worker import Worker
from producers.app import AppOptions
from storage.migrate import migrate
from storage.models import EventStatus
from tests.conftest import test_secret_box, unique_name
from tests.support.emulator_fixture import Emulator
from tests.support.webhook_fixtures import (
    AppHarness,
    chatbot_lead,
    signed_headers,
    test_runtime,
)
from tests.support.webhook_fixtures import read_topic as read_events
from tests.support.webhook_fixtures import seed_tenant as seed_webhook_tenant
from tests.support.worker_fixtures import (
    event_rows,
    make_conversion,
    make_worker_config,
    produce_events,
    read_topic,
    running_worker,
    seed_tenant,
    wait_for,
)

# "2xx again within 10 s of the broker coming back" (issue 11); measured from the moment
# the topics exist again.
SERVE_RECOVERY_SECONDS = 10.0
# Meta failures injected after the restart in the worker test (5 attempts are allowed).
FAULTS_AFTER = 3
CODEC = build_codec()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A broker of this test's own (the session's must not be killed)."""
    with EmbeddedBroker(log_path=tmp_path / "tansu.log") as running:
        yield running


@pytest.fixture
def restart_kafka(broker: EmbeddedBroker) -> KafkaConfig:
    return KafkaConfig(
        bootstrap_servers=broker.bootstrap_servers,
        session_timeout_ms=2000,
        heartbeat_interval_ms=200,
        fetch_wait_max_ms=20,
    )


@pytest.fixture
def sqlite_sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    # The subject is the Kafka edge; one database backend is enough here.
    engine = build_engine(f"sqlite:///{tmp_path / 'capi.db'}")
    migrate(engine)
    yield build_session_factory(engine, test_secret_box())  # tenants are sealed at rest
    engine.dispose()


def restart(broker: EmbeddedBroker, kafka: KafkaConfig, topics: tuple[str, ...]) -> float:
    """Start the killed broker again on its port, re-create ``topics``; when they exist."""
    broker.start()
    ensure_topics(kafka.admin_config(), topics, partitions=3)
    return time.monotonic()


# --- serve -----------------------------------------------------------------------------------


@dataclass
class Traffic:
    """What the webhook senders saw: ``(sent_at, answered_at, status, event_id)``."""

    answers: list[tuple[float, float, int, str | None]] = field(default_factory=list)
    retry_after_missing: int = 0
    stop: bool = False

    def accepted_after(self, moment: float) -> list[str]:
        return [e for _, done, status, e in self.answers if done > moment and status == 202 and e]

    def accepted_sent_after(self, moment: float) -> list[str]:
        """202s of requests sent after ``moment`` (a request sent after the kill can only
        have been acknowledged by the restarted broker; one answered just after the kill
        may still carry the dead broker's ack)."""
        return [e for sent, _, status, e in self.answers if sent > moment and status == 202 and e]

    def first_2xx_after(self, moment: float) -> float | None:
        times = [done for sent, done, s, _ in self.answers if sent >= moment and 200 <= s < 300]
        return min(times) if times else None

    def count(self, status: int, after: float = 0.0) -> int:
        return sum(1 for _, done, s, _ in self.answers if s == status and done > after)


async def _sender(
    client: httpx.AsyncClient, tenant_id: uuid.UUID, name: str, traffic: Traffic
) -> None:
    n = 0
    while not traffic.stop:
        n += 1
        body = chatbot_lead(f"{name}-{n}", email=f"{name}-{n}@example.com")
        sent = time.monotonic()
        response = await client.post(
            f"/webhooks/{tenant_id}/chatbot", content=body, headers=signed_headers("chatbot", body)
        )
        event_id = response.json().get("event_id") if response.status_code == 202 else None
        if response.status_code == 503 and "retry-after" not in response.headers:
            traffic.retry_after_missing += 1
        traffic.answers.append((sent, time.monotonic(), response.status_code, event_id))
        await asyncio.sleep(0.02)  # a webhook sender's pace, not a wait for a condition


async def _until(condition: object, timeout: float, what: str) -> float:
    """Await ``condition()`` (sync or async) being truthy; the moment it was."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()  # type: ignore[operator]
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def test_serve_answers_2xx_again_after_the_broker_restarts(
    broker: EmbeddedBroker,
    restart_kafka: KafkaConfig,
    sqlite_sessions: sessionmaker[Session],
) -> None:
    topics = TopicNames(main=unique_name("capi.events"))
    ensure_topics(restart_kafka.admin_config(), (topics.main,), partitions=3)
    tenant_id = seed_webhook_tenant(sqlite_sessions)
    engine = sqlite_sessions.kw["bind"]
    runtime = test_runtime(restart_kafka, topics, engine, sqlite_sessions)
    options = AppOptions(publish_timeout_seconds=3.0, readiness_cache_seconds=0.0)
    traffic = Traffic()
    figures: dict[str, float] = {}

    async def ready(client: httpx.AsyncClient) -> bool:
        return (await client.get("/readyz")).status_code == 200

    async def not_ready(client: httpx.AsyncClient) -> bool:
        return (await client.get("/readyz")).status_code == 503

    async def scenario(harness: AppHarness) -> None:
        client = harness.client
        senders = [
            asyncio.create_task(_sender(client, tenant_id, f"s{i}", traffic)) for i in range(8)
        ]
        try:
            await _until(lambda: traffic.count(202) >= 40, 30, "202s before the kill")
            assert await ready(client)
            await asyncio.to_thread(broker.kill)
            killed = time.monotonic()
            await _until(lambda: traffic.count(503, killed) >= 8, 30, "503s while it is down")
            await _until(lambda: not_ready(client), 15, "/readyz 503 while it is down")
            back = await asyncio.to_thread(restart, broker, restart_kafka, (topics.main,))
            first = await _until(
                lambda: traffic.first_2xx_after(back), SERVE_RECOVERY_SECONDS, "a 2xx after restart"
            )
            figures["first_2xx_s"] = (traffic.first_2xx_after(back) or first) - back
            figures["ready_s"] = await _until(lambda: ready(client), 15, "/readyz 200") - back
            await _until(lambda: len(traffic.accepted_after(back)) >= 100, 30, "100 more 202s")
        finally:
            traffic.stop = True
            await asyncio.gather(*senders)
        figures["killed_at"] = killed

    with AppHarness(runtime, options) as harness:
        harness._runner.run(scenario(harness))
        assert harness.app.state.publisher.status().rebuilds >= 1

    # Every 202 to a request sent after the kill came from the restarted broker: all there.
    acked = set(traffic.accepted_sent_after(figures["killed_at"]))
    on_topic = {p.event.event_id for p in read_events(restart_kafka, topics.main)}
    lost = acked - on_topic
    for sent, done, _, event_id in traffic.answers:
        if event_id in lost:  # says when, should it ever fail
            killed_at = figures["killed_at"]
            print(f"lost {event_id}: sent {sent - killed_at:+.3f}s, 202 {done - killed_at:+.3f}s")
    print(
        f"\nserve: first 2xx {figures['first_2xx_s']:.2f}s and /readyz 200 "
        f"{figures['ready_s']:.2f}s after the broker was back; {len(acked)} acked after the "
        f"kill, {len(lost)} lost; {traffic.count(503)} x 503"
    )
    assert not lost
    assert traffic.retry_after_missing == 0
    assert {s for _, _, s, _ in traffic.answers} <= {202, 503}


def test_serve_gives_up_when_the_producer_cannot_be_brought_back(
    broker: EmbeddedBroker,
    restart_kafka: KafkaConfig,
    sqlite_sessions: sessionmaker[Session],
) -> None:
    """Past the recovery bound serve stops being ready and asks to be restarted (exit 4)."""
    topics = TopicNames(main=unique_name("capi.events"))
    ensure_topics(restart_kafka.admin_config(), (topics.main,), partitions=3)
    tenant_id = seed_webhook_tenant(sqlite_sessions)
    runtime = test_runtime(restart_kafka, topics, sqlite_sessions.kw["bind"], sqlite_sessions)
    gave_up: list[bool] = []
    options = AppOptions(
        publish_timeout_seconds=5.0,
        readiness_cache_seconds=0.0,  # a loaded first connect
        kafka_recovery=RecoveryPolicy(give_up_after_seconds=0.0),
        on_kafka_give_up=lambda: gave_up.append(True),
    )
    with AppHarness(runtime, options) as app:
        body = chatbot_lead("before")
        assert app.send(tenant_id, "chatbot", body).status_code == 202
        broker.kill()  # stays down: the timed-out delivery condemns the producer

        def answer() -> int:
            return app.send(tenant_id, "chatbot", chatbot_lead(uuid.uuid4().hex)).status_code

        assert answer() == 503
        wait_for(lambda: answer() == 503 and gave_up, 30, what="recovery given up")
        assert gave_up == [True]
        ready = app.get("/readyz")
        assert (ready.status_code, ready.json()["broker"]) == (503, "unavailable")


# --- worker ----------------------------------------------------------------------------------


def test_a_running_worker_forwards_and_sends_again_after_the_broker_restarts(
    broker: EmbeddedBroker,
    restart_kafka: KafkaConfig,
    sqlite_sessions: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    topics = TopicNames(main=unique_name("capi.events"))
    ensure_topics(restart_kafka.admin_config(), topics.all, partitions=3)
    tenant_id, pixel = seed_tenant(sqlite_sessions)
    revoked = "EAAB-revoked-before-restart"
    dead_tenant, _ = seed_tenant(sqlite_sessions, token=revoked)
    emulator.state.add_invalid_token(revoked)
    group = unique_name("group")
    # No slow faults here: a generous timeout keeps a loaded machine from turning a slow
    # answer into a Meta failure, which would spend an attempt the assertions count.
    config = make_worker_config(group, emulator.base_url, meta_timeout_seconds=10.0)

    with running_worker(restart_kafka, topics, sqlite_sessions, config) as running:
        worker = running.worker
        # Before: the forward producer has a producer id (a tier forward went through).
        emulator.state.add_fault("http_500", pixel_id=pixel, count=1)
        before = [make_conversion(tenant_id, n) for n in range(20)]
        produce_events(restart_kafka, topics.main, before, CODEC)
        wait_for(lambda: _sent(sqlite_sessions, tenant_id) == 20, 40, what="20 sent before")
        assert _retried(worker) >= 1
        # Under load: another tenant's backlog, a third of its sends failing, is in the
        # middle of being sent and forwarded through the tiers when the broker dies.
        busy_tenant, busy_pixel = seed_tenant(sqlite_sessions)
        emulator.state.add_fault("http_500", pixel_id=busy_pixel, rate=0.3)
        busy = [make_conversion(busy_tenant, n) for n in range(400)]
        produce_events(restart_kafka, topics.main, busy, CODEC)
        wait_for(lambda: _sent(sqlite_sessions, busy_tenant) > 0, 30, what="the backlog moving")

        broker.kill()
        wait_for(lambda: not worker.ready()[0], 30, what="worker not ready while down")
        back = restart(broker, restart_kafka, topics.all)
        back_ms = time.time() * 1000
        # After: the next three sends fail, so records must hop through the tiers (a replay
        # after a failed forward may use up a fault; three leave room for that).
        emulator.state.add_fault("http_500", pixel_id=pixel, count=FAULTS_AFTER)
        after = [make_conversion(tenant_id, n) for n in range(100, 200)]
        produce_events(restart_kafka, topics.main, after, CODEC)
        doomed = [make_conversion(dead_tenant, n) for n in range(5)]
        produce_events(restart_kafka, topics.main, doomed, CODEC)
        wait_for(lambda: _sent(sqlite_sessions, tenant_id) == 120, 90, what="all 100 sent after")
        all_sent = time.monotonic()
        wait_for(lambda: worker.ready()[0], 30, what="worker ready again")

    rows = {r.event_id: r for r in event_rows(sqlite_sessions, tenant_id)}
    after_ids = {e.event_id for e in after}
    sent_to_meta = {e.payload["event_id"] for e in emulator.state.events(pixel)}
    tiers = [r for topic in topics.retries for r in read_topic(restart_kafka, topic, timeout=5)]
    dead = read_topic(restart_kafka, topics.dlq, at_least=5, timeout=20)
    forwards = [r for r in tiers if r.headers[h.EVENT_ID] in after_ids]
    attempts = {r.headers[h.ATTEMPT] for r in forwards}
    # The batch that failed and was forwarded: the first forward that landed after the restart.
    first_forward_s = (min(int(r.headers[h.FAILED_AT]) for r in forwards) - back_ms) / 1000
    lost = after_ids - sent_to_meta
    print(
        f"\nworker: first forward {first_forward_s:.2f}s, all 100 sent {all_sent - back:.2f}s "
        f"after the broker was back; {len(lost)} lost; attempts on the tiers {sorted(attempts)}; "
        f"send_attempts {sorted({rows[i].send_attempts for i in after_ids})}; producer "
        f"rebuilt {worker._producer.status().rebuilds if worker._producer else '?'}x"
    )
    assert not lost
    assert all(rows[i].status == EventStatus.SENT for i in after_ids)
    # A forward landed after the restart. At most FAULTS_AFTER Meta failures per event: never
    # an attempt more, so none was burned by the restart, and none reached the dead letters.
    assert forwards
    assert {int(a) for a in attempts} <= set(range(2, FAULTS_AFTER + 2))
    assert max(rows[i].send_attempts for i in after_ids) <= FAULTS_AFTER + 1
    assert {r.headers[h.EVENT_ID] for r in dead} == {e.event_id for e in doomed}
    assert {r.headers[h.ATTEMPT] for r in dead} == {"1"}


def _sent(sessions: sessionmaker[Session], tenant_id: uuid.UUID) -> int:
    return sum(1 for r in event_rows(sessions, tenant_id) if r.status == EventStatus.SENT)


def _retried(worker: Worker) -> float:
    samples = [s for m in worker.metrics.retried.collect() for s in m.samples]
    return float(sum(s.value for s in samples if s.name.endswith("_total")))


# --- the worker's consumer ---------------------------------------------------------------------


def test_a_condemned_consumer_is_replaced_and_the_worker_carries_on(
    restart_kafka: KafkaConfig,
    sqlite_sessions: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    """A consumer with a fatal error is closed; a fresh member resumes from the commits."""
    topics = TopicNames(main=unique_name("capi.events"))
    ensure_topics(restart_kafka.admin_config(), topics.all, partitions=3)
    tenant_id, _ = seed_tenant(sqlite_sessions)
    config = make_worker_config(unique_name("group"), emulator.base_url, tiers="main")
    with running_worker(restart_kafka, topics, sqlite_sessions, config) as running:
        worker = running.worker
        produce_events(restart_kafka, topics.main, [make_conversion(tenant_id, 0)], CODEC)
        wait_for(lambda: _sent(sqlite_sessions, tenant_id) == 1, 30, what="first sent")
        assert worker._consumers is not None
        first = worker._consumers.client
        worker._consumers.condemn("test: a fatal consumer error")
        wait_for(lambda: not worker.ready()[0], 10, what="not ready while replaced")
        events = [make_conversion(tenant_id, n) for n in range(1, 31)]
        produce_events(restart_kafka, topics.main, events, CODEC)
        wait_for(lambda: _sent(sqlite_sessions, tenant_id) == 31, 40, what="31 sent")
        wait_for(lambda: worker.ready()[0], 20, what="ready again")
        assert worker._consumers.client is not first
        assert worker._consumers.status().rebuilds == 1


def test_a_worker_whose_consumer_cannot_be_brought_back_exits(
    restart_kafka: KafkaConfig,
    sqlite_sessions: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    topics = TopicNames(main=unique_name("capi.events"))
    ensure_topics(restart_kafka.admin_config(), topics.all, partitions=3)
    worker = Worker(
        kafka=restart_kafka,
        topics=topics,
        sessions=sqlite_sessions,
        codec=CODEC,
        config=make_worker_config(unique_name("group"), emulator.base_url, metrics_port=None),
        recovery=RecoveryPolicy(give_up_after_seconds=0.0),
    )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:  # asserted below
            errors.append(exc)

    thread = threading.Thread(target=run, name="worker-gives-up", daemon=True)
    thread.start()
    wait_for(lambda: worker._consumers is not None, 10, what="worker started")
    assert worker._consumers is not None
    worker._consumers.condemn("test: a fatal consumer error")
    thread.join(30)
    assert not thread.is_alive()
    assert [type(e) for e in errors] == [ClientUnrecoverableError]
    assert not worker.ready()[0]
