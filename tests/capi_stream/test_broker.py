"""The broker fixture is a real Kafka-protocol broker: produce, then consume in a group."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.producer import ConfirmedProducer, OutgoingRecord


def test_produce_and_consume_through_a_consumer_group(
    kafka_config: KafkaConfig, topic_factory: Callable[..., str], group_id: str
) -> None:
    topic = topic_factory(partitions=3)
    producer = ConfirmedProducer(kafka_config.producer_config())
    sent = {f"value-{n}".encode() for n in range(30)}
    producer.send_all(
        [OutgoingRecord(topic, value, key=f"k{n}".encode()) for n, value in enumerate(sent)]
    )

    consumer = Consumer(kafka_config.consumer_config(group_id))
    consumer.subscribe([topic])
    received: set[bytes] = set()
    deadline = time.monotonic() + 30
    try:
        while received != sent and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            received.add(message.value() or b"")
            consumer.commit(message=message, asynchronous=False)
        committed = consumer.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    finally:
        consumer.close()

    assert received == sent
    assert sum(tp.offset for tp in committed) == len(sent)
