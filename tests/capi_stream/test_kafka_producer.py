"""The producer base's explicit ``purge``: records not sent yet are dropped, none is reported
as delivered. No broker is needed: nothing leaves the local queue."""

from __future__ import annotations

from confluent_kafka import KafkaError

from capi_stream.kafka.producer import ConfirmedProducer, OutgoingRecord

# Nothing listens on the discard port: records stay queued.
NO_BROKER = {"bootstrap.servers": "127.0.0.1:9", "message.timeout.ms": 60_000}


def test_purge_drops_the_records_not_sent_yet() -> None:
    producer = ConfirmedProducer(NO_BROKER)
    reports: list[KafkaError | None] = []
    record = OutgoingRecord("capi.events", b"value", key=b"key")
    for _ in range(3):
        producer._produce(producer.lifecycle.client, record, lambda e, _m: reports.append(e), "r")
    assert reports == []  # queued: no broker to take them
    producer.purge()  # serves the reports of what it dropped
    assert [e.code() if e else None for e in reports] == [KafkaError._PURGE_QUEUE] * 3
    producer.close(0)
