"""Credential rotation while batches are in flight: no client is closed under a send."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import build_codec
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames
from consumers.config import WorkerConfig
from consumers.worker import Worker
from meta_capi.client import BatchOutcome, MetaCAPIClient
from meta_capi.server_event import ServerEvent
from storage.models import EventStatus
from storage.tenants import META_PROVIDER, upsert_integration
from tests.support.emulator_fixture import Emulator
from tests.support.worker_fixtures import (
    event_rows,
    make_conversion,
    make_worker_config,
    produce_events,
    read_topic,
    seed_tenant,
    wait_for,
)

CODEC = build_codec()
EVENTS = 120


class WatchedClient:
    """The real client, watched: a close while a send is running is the race we fixed."""

    def __init__(self, inner: MetaCAPIClient, violations: list[str]) -> None:
        self.inner = inner
        self.violations = violations
        self.sending = 0
        self.sends = 0
        self.closed = False
        self._lock = threading.Lock()

    def send_events(self, events: Sequence[ServerEvent]) -> BatchOutcome:
        with self._lock:
            if self.closed:
                self.violations.append("send on a closed client")
            self.sending += 1
            self.sends += 1
        try:
            return self.inner.send_events(events)
        finally:
            with self._lock:
                self.sending -= 1

    def close(self) -> None:
        with self._lock:
            if self.sending:
                self.violations.append("closed while a batch was sending with it")
            self.closed = True
        self.inner.close()


@contextmanager
def _worker(
    kafka: KafkaConfig,
    topics: TopicNames,
    sessions: sessionmaker[Session],
    config: WorkerConfig,
    build: Any,
) -> Iterator[Worker]:
    worker = Worker(
        kafka=kafka,
        topics=topics,
        sessions=sessions,
        codec=CODEC,
        config=config,
        stop_event=threading.Event(),
        build_client=build,
    )
    errors: list[BaseException] = []

    def target() -> None:
        try:
            worker.run()
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="worker-under-test", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop_event.set()
        thread.join(20)
    assert not thread.is_alive(), "worker did not stop"
    if errors:
        raise errors[0]


def test_rotating_a_token_while_batches_are_in_flight_dead_letters_nothing(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    tenant_id, pixel = seed_tenant(session_factory, token="EAAB-rotation-0")
    emulator.state.add_fault("slow", pixel_id=pixel, delay_seconds=0.15)  # sends take time
    violations: list[str] = []
    clients: list[WatchedClient] = []

    def build(credentials: Mapping[str, Any]) -> WatchedClient:
        inner = MetaCAPIClient.from_tenant(credentials, graph_url=emulator.base_url)
        clients.append(WatchedClient(inner, violations))
        return clients[-1]

    rotations = 0
    stop = threading.Event()

    def rotate() -> None:  # an operator (or a script) rotating the token again and again
        nonlocal rotations
        while not stop.wait(0.1):
            rotations += 1
            with session_factory.begin() as session:
                upsert_integration(
                    session,
                    tenant_id,
                    META_PROVIDER,
                    {"pixel_id": pixel, "capi_access_token": f"EAAB-rotation-{rotations}"},
                )

    # Small batches and a short cache: each batch re-reads the tenant while one is sending.
    config = make_worker_config(
        group_id,
        emulator.base_url,
        batch_max_events=10,
        batch_max_wait_seconds=0.05,
        tenant_cache_ttl_seconds=0.05,
    )
    events = [make_conversion(tenant_id, n, "Lead") for n in range(EVENTS)]
    rotator = threading.Thread(target=rotate, name="rotator", daemon=True)
    with _worker(kafka_config, topic_names, session_factory, config, build):
        rotator.start()
        try:
            produce_events(kafka_config, topic_names.main, events, CODEC)
            wait_for(
                lambda: (
                    [r.status for r in event_rows(session_factory, uuid.UUID(str(tenant_id)))]
                    == [EventStatus.SENT] * EVENTS
                ),
                timeout=90,
                what="every event sent",
            )
        finally:
            stop.set()
            rotator.join(10)
    assert violations == []
    used = [c for c in clients if c.sends]
    assert len(used) >= 3, f"{len(used)} clients sent: the rotation did not overlap batches"
    assert all(c.closed for c in clients)  # retired ones once settled, the rest at stop
    assert read_topic(kafka_config, topic_names.dlq, timeout=1) == []
    assert {r.send_attempts for r in event_rows(session_factory, tenant_id)} == {1}
    received = sorted(str(e.payload["event_id"]) for e in emulator.state.events(pixel))
    assert received == sorted(e.event_id for e in events)
    print(
        f"\nrotation: {EVENTS} events, {rotations} rotations, {len(used)} clients sent, "
        f"{len(clients)} built, 0 closed under a send, 0 dead letters"
    )


def test_a_token_revoked_at_rotation_sends_again_with_the_new_one_at_once(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    group_id: str,
    session_factory: sessionmaker[Session],
    emulator: Emulator,
) -> None:
    old, new = "EAAB-leaked-token", "EAAB-fresh-token"
    tenant_id, pixel = seed_tenant(session_factory, token=old)
    emulator.state.add_fault("slow", pixel_id=pixel, delay_seconds=0.15)
    # A cache TTL far longer than the test: only the token error itself makes the worker
    # look again, and it must then use the new token instead of dead-lettering.
    config = make_worker_config(
        group_id,
        emulator.base_url,
        batch_max_events=10,
        batch_max_wait_seconds=0.05,
        tenant_cache_ttl_seconds=3600.0,
    )
    # 100 events in batches of 10 taking >= 0.15 s each: 90 are still to go when the token
    # is revoked, so sends with the revoked token surely happen.
    events = [make_conversion(tenant_id, n, "Lead") for n in range(100)]

    def sent() -> int:
        rows = event_rows(session_factory, tenant_id)
        return sum(r.status == EventStatus.SENT for r in rows)

    with _worker(kafka_config, topic_names, session_factory, config, None):
        produce_events(kafka_config, topic_names.main, events, CODEC)
        wait_for(lambda: sent() >= 10, timeout=60, what="the first batches sent")
        with session_factory.begin() as session:  # the operator rotates the leaked token...
            upsert_integration(
                session, tenant_id, META_PROVIDER, {"pixel_id": pixel, "capi_access_token": new}
            )
        emulator.state.add_invalid_token(old)  # ...and Meta revokes the old one at once
        wait_for(lambda: sent() == len(events), timeout=60, what="every event sent")
    refused = [r for r in emulator.state.requests(pixel) if r.status_code != 200]
    assert refused, "no send was refused with the revoked token: the test proved nothing"
    assert read_topic(kafka_config, topic_names.dlq, timeout=1) == []
    received = sorted(str(e.payload["event_id"]) for e in emulator.state.events(pixel))
    assert received == sorted(e.event_id for e in events)
    # The refused send reached Meta: counted; none was dead-lettered or spent an attempt.
    assert {r.send_attempts for r in event_rows(session_factory, tenant_id)} <= {1, 2}
    print(f"\nrevocation: {len(events)} events, {len(refused)} sends refused (190), 0 dead letters")
