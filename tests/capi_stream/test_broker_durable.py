"""The durable embedded broker (``capi dev``'s default) keeps what it acknowledged.

A producer writes continuously while the broker is SIGKILLed and restarted on its port, then
the whole box (broker and its object server) is SIGKILLed and a new broker starts over the
same folder, as a ``make run`` restart does. Every acknowledged record and the committed
group offsets must be found back. The object server's conditional writes, which Tansu's
offsets depend on, are checked on their own.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from capi_stream.kafka.broker import EmbeddedBroker, find_free_port, wait_for_port
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.objectstore import ObjectStoreServer
from capi_stream.kafka.topics import ensure_topics

PARTITIONS = 3


def _await(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds}s: {what}")
        time.sleep(0.05)


class _LoadProducer:
    """Produces numbered records until stopped; remembers which ones were acknowledged."""

    def __init__(self, config: KafkaConfig, topic: str) -> None:
        self._producer = Producer(config.producer_config(**{"message.timeout.ms": 120_000}))
        self._topic = topic
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._acked: set[bytes] = set()
        self.failed: list[str] = []
        self._thread = threading.Thread(target=self._run, name="load-producer", daemon=True)

    def _on_delivery(self, err: KafkaError | None, message: Message) -> None:
        value = message.value()
        if err is not None or value is None:
            self.failed.append(str(err))
            return
        with self._lock:
            self._acked.add(value)

    def acked(self) -> set[bytes]:
        with self._lock:
            return set(self._acked)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            try:
                self._producer.produce(
                    self._topic,
                    f"r-{n}".encode(),
                    key=f"k-{n % 50}".encode(),
                    on_delivery=self._on_delivery,
                )
                n += 1
            except BufferError:
                pass
            self._producer.poll(0.002)

    def __enter__(self) -> _LoadProducer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self._producer.flush(120)


def _read_all(config: KafkaConfig, topic: str, expected: set[bytes]) -> set[bytes]:
    consumer = Consumer(config.consumer_config(f"reader-{uuid.uuid4().hex[:8]}"))
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    seen: set[bytes] = set()
    deadline = time.monotonic() + 60
    try:
        while not expected <= seen and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                value = message.value()
                if message.error() is None and value is not None:
                    seen.add(value)
    finally:
        consumer.close()
    return seen


def _consume_and_commit(config: KafkaConfig, topic: str, group: str, count: int) -> list[int]:
    consumer = Consumer(config.consumer_config(group))
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    taken = 0
    deadline = time.monotonic() + 30
    try:
        while taken < count and time.monotonic() < deadline:
            taken += sum(1 for m in consumer.consume(100, 0.5) if m.error() is None)
        positions = consumer.position([TopicPartition(topic, p) for p in range(PARTITIONS)])
        consumer.commit(offsets=[tp for tp in positions if tp.offset >= 0], asynchronous=False)
        return _committed(consumer, topic)
    finally:
        consumer.close()


def _committed(consumer: Consumer, topic: str) -> list[int]:
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    return [tp.offset for tp in consumer.committed(partitions, timeout=15)]


def _committed_for(config: KafkaConfig, topic: str, group: str) -> list[int]:
    consumer = Consumer(config.consumer_config(group))
    try:
        return _committed(consumer, topic)
    finally:
        consumer.close()


@pytest.fixture
def durable_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log", storage_dir=tmp_path / "broker")
    try:
        yield broker.start()
    finally:
        broker.stop()


def test_every_acked_record_and_committed_offset_survives_sigkill_and_a_stack_restart(
    durable_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    # The dev stack's producer settings on this broker (see KafkaConfig.idempotence).
    config = KafkaConfig(durable_broker.bootstrap_servers, idempotence=False)
    topic, group = f"durable-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    ensure_topics(config.admin_config(), (topic,), PARTITIONS)

    with _LoadProducer(config, topic) as load:
        _await(lambda: len(load.acked()) >= 300, 60, "300 records acknowledged")
        committed = _consume_and_commit(config, topic, group, 200)
        durable_broker.kill()  # mid-produce: requests are in flight
        acked_at_kill = load.acked()
        durable_broker.start()
        _await(lambda: len(load.acked()) >= len(acked_at_kill) + 300, 60, "300 more after restart")
    acked = load.acked()

    # The whole box goes down: a new broker over the same folder, on another port.
    durable_broker.kill(with_storage=True)
    reborn = EmbeddedBroker(log_path=tmp_path / "tansu.log", storage_dir=durable_broker.storage_dir)
    with reborn:
        config = KafkaConfig(reborn.bootstrap_servers, idempotence=False)
        found = _read_all(config, topic, acked)
        committed_after = _committed_for(config, topic, group)

    assert load.failed == []
    assert sum(o for o in committed if o > 0) >= 200
    assert committed_after == committed
    assert acked_at_kill <= found, f"{len(acked_at_kill - found)} acked before the kill lost"
    assert acked <= found, f"{len(acked - found)} of {len(acked)} acked records lost"


@pytest.fixture
def object_store(tmp_path: Path) -> Iterator[str]:
    server = ObjectStoreServer(tmp_path, "127.0.0.1", find_free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    wait_for_port("127.0.0.1", server.server_address[1], 10)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_object_store_conditional_writes_are_what_tansus_offsets_rely_on(
    object_store: str, tmp_path: Path
) -> None:
    with httpx.Client(base_url=object_store, timeout=10) as http:
        assert http.put("/tansu").status_code == 200
        key = "/tansu/clusters/c/topics/t/partitions/0000000000/watermark.json"

        created = http.put(key, content=b'{"high":1}', headers={"If-None-Match": "*"})
        again = http.put(key, content=b'{"high":9}', headers={"If-None-Match": "*"})
        etag = created.headers["ETag"]
        updated = http.put(key, content=b'{"high":2}', headers={"If-Match": etag})
        stale = http.put(key, content=b'{"high":3}', headers={"If-Match": etag})
        current = http.get(key)
        unchanged = http.get(key, headers={"If-None-Match": current.headers["ETag"]})
        listed = http.get("/tansu", params={"list-type": "2", "prefix": "clusters/c/topics/"})
        missing = http.get("/tansu/clusters/c/nothing.json")

    assert (created.status_code, again.status_code) == (200, 412)
    assert (updated.status_code, stale.status_code) == (200, 412)
    assert current.content == b'{"high":2}'
    assert unchanged.status_code == 304
    assert "<Key>clusters/c/topics/t/partitions/0000000000/watermark.json</Key>" in listed.text
    assert missing.status_code == 404
    # Every write is a whole file in place: nothing half-written is left beside it.
    assert sorted(p.name for p in (tmp_path / ".tmp").iterdir()) == []
