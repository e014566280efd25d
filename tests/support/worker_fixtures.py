"""Helpers for the worker tests: seeded tenants, raw events, a worker thread, topic readers.

Everything is real: the broker, the database of the ``db_url`` fixture and the Meta
emulator over HTTP. Waits are deadline loops on a condition, never fixed sleeps.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar, cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.codec import EventCodec, build_codec
from capi_stream.event import ConversionEvent
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.message import KafkaRecord
from capi_stream.kafka.producer import ConfirmedProducer, OutgoingRecord
from capi_stream.kafka.topics import TopicNames
from consumers.config import WorkerConfig
from consumers.headers import header_map
from consumers.worker import Worker
from storage.models import MetaCapiEvent
from storage.tenants import META_PROVIDER, upsert_integration, upsert_tenant

TOKEN = "EAAB-worker-test-token"
T = TypeVar("T")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def wait_for(
    condition: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> T:
    """Return ``condition()`` once truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


def seed_tenant(
    sessions: sessionmaker[Session],
    *,
    pixel_id: str | None = None,
    token: str = TOKEN,
    default_country: str | None = "US",
) -> tuple[uuid.UUID, str]:
    """A tenant with a Meta integration (``pixel_id`` None = no integration)."""
    tenant_id = uuid.uuid4()
    pixel = pixel_id if pixel_id is not None else str(uuid.uuid4().int % 10**12)
    with sessions.begin() as session:
        upsert_tenant(session, tenant_id, "Test shop", default_country)
        if pixel_id != "":
            upsert_integration(
                session, tenant_id, META_PROVIDER, {"pixel_id": pixel, "capi_access_token": token}
            )
    return tenant_id, pixel


RAW_EMAIL = "Jane.Doe+{n}@Example.COM"


def make_conversion(
    tenant_id: uuid.UUID, n: int, event_name: str = "Purchase", **overrides: Any
) -> ConversionEvent:
    """A raw (PII in clear) event as the producers publish it to the main topic."""
    fields: dict[str, Any] = {
        "event_name": event_name,
        "event_time": datetime.now(UTC) - timedelta(minutes=5),
        "action_source": "website",
        "event_source_url": "https://shop.example.com/checkout",
        "client_user_agent": "Mozilla/5.0 (test)",
        "client_ip_address": "203.0.113.7",
        "user": {
            "emails": [f" {RAW_EMAIL.format(n=n)} "],
            "phones": ["(650) 555-1212"],
            "first_name": "Jane",
            "last_name": "Doe",
            "city": "Menlo Park",
            "zip": "94025",
        },
        "attribution": {"fbp": "fb.1.1596403881668.1116446470"},
    }
    if event_name == "Purchase":
        fields["custom_data"] = {"value": Decimal("42.50"), "currency": "USD", "order_id": f"o{n}"}
    fields.update(overrides)
    return ConversionEvent.create(
        tenant_id=tenant_id, source="api", source_event_id=f"{event_name}-{n}", **fields
    )


def produce(
    kafka: KafkaConfig, topic: str, values: list[bytes], keys: list[bytes] | None = None
) -> None:
    producer = ConfirmedProducer(kafka.producer_config())
    producer.send_all(
        [
            OutgoingRecord(topic, value, key=(keys[i] if keys else f"k{i}".encode()))
            for i, value in enumerate(values)
        ]
    )
    producer.close()


def produce_events(
    kafka: KafkaConfig, topic: str, events: list[ConversionEvent], codec: EventCodec
) -> None:
    produce(kafka, topic, [codec.encode(e) for e in events], [e.event_id.encode() for e in events])


@dataclass
class ReadRecord:
    topic: str
    partition: int
    offset: int
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)


def read_topic(
    kafka: KafkaConfig,
    topic: str,
    *,
    at_least: int = 0,
    timeout: float = 20.0,
    partitions: int = 3,
) -> list[ReadRecord]:
    """Every record of ``topic`` (assign from the beginning; no group)."""
    consumer = Consumer(kafka.consumer_config(f"reader-{uuid.uuid4().hex[:8]}"))
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    found: list[ReadRecord] = []
    deadline = time.monotonic() + timeout
    idle_until = time.monotonic() + 1.0
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.1)
            if message is None or message.error():
                if len(found) >= at_least and time.monotonic() > idle_until:
                    break
                continue
            idle_until = time.monotonic() + 0.3
            found.append(
                ReadRecord(
                    topic,
                    message.partition() or 0,
                    message.offset() or 0,
                    message.value() or b"",
                    header_map(cast(KafkaRecord, message).headers()),
                )
            )
    finally:
        consumer.close()
    return found


def committed(kafka: KafkaConfig, group: str, topic: str, partitions: int = 3) -> int:
    """Sum of the group's committed offsets on ``topic`` (unset partitions count 0)."""
    consumer = Consumer(kafka.consumer_config(group))
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], 10)
    finally:
        consumer.close()
    return sum(max(tp.offset, 0) for tp in offsets)


def event_rows(sessions: sessionmaker[Session], tenant_id: uuid.UUID) -> list[MetaCapiEvent]:
    with sessions() as session:
        return list(
            session.scalars(select(MetaCapiEvent).where(MetaCapiEvent.tenant_id == tenant_id))
        )


def make_worker_config(group_id: str, graph_url: str, **overrides: Any) -> WorkerConfig:
    config = WorkerConfig(
        group_id=group_id,
        batch_max_events=500,
        batch_max_wait_seconds=0.2,
        retry_delays_seconds=(0.3, 0.3, 0.3, 0.3),
        rate_limit_default_seconds=1.0,
        tenant_cache_ttl_seconds=1.0,
        outage_backoff_base_seconds=0.2,
        outage_backoff_cap_seconds=1.0,
        metrics_port=0,
        meta_graph_url=graph_url,
        meta_timeout_seconds=1.5,
    )
    return replace(config, **overrides)


@dataclass
class RunningWorker:
    worker: Worker
    thread: threading.Thread
    errors: list[BaseException]

    def stop(self, timeout: float = 20.0) -> None:
        self.worker.stop_event.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"


@contextmanager
def running_worker(
    kafka: KafkaConfig,
    topics: TopicNames,
    sessions: sessionmaker[Session],
    config: WorkerConfig,
    codec: EventCodec | None = None,
) -> Iterator[RunningWorker]:
    """A ``Worker`` on a thread; stopped (like SIGTERM) on exit; its errors are re-raised."""
    worker = Worker(
        kafka=kafka,
        topics=topics,
        sessions=sessions,
        codec=codec or build_codec(),
        config=config,
        stop_event=threading.Event(),
    )
    errors: list[BaseException] = []

    def target() -> None:
        try:
            worker.run()
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="worker-under-test", daemon=True)
    thread.start()
    running = RunningWorker(worker, thread, errors)
    try:
        yield running
    finally:
        running.stop()
    if errors:  # a test expecting an error takes it out of ``errors``
        raise errors[0]


class TcpProxy:
    """A loopback TCP proxy to cut and restore a dependency (PostgreSQL) under a live worker.

    While cut, existing connections are closed and new ones are accepted then closed at once,
    exactly what a client sees when the server goes away.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._up = True
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self._up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, target), daemon=True).start()

    def cut(self) -> None:
        self._up = False
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close(sock)

    def restore(self) -> None:
        self._up = True

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._server.close()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(target)
