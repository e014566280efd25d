"""ClientLifecycle: when a Kafka client is replaced, how fast, and when recovery gives up."""

from __future__ import annotations

import json
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from capi_stream.kafka.lifecycle import ClientLifecycle, ClientState, RecoveryPolicy


class FakeClient:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.disposed = False


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


POLICY = RecoveryPolicy(
    backoff_base_seconds=1.0, backoff_cap_seconds=4.0, give_up_after_seconds=60.0, epoch_storm=10
)


def make(clock: Clock, **kwargs: Any) -> ClientLifecycle[FakeClient]:
    def dispose(client: FakeClient) -> None:
        client.disposed = True

    return ClientLifecycle(
        "producer",
        FakeClient,
        {"bootstrap.servers": "x"},
        dispose=dispose,
        policy=POLICY,
        clock=clock,
        rng=lambda: 1.0,
        **kwargs,
    )


def fatal(code: int = KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER) -> KafkaError:
    return KafkaError(code, "sequence desynchronization", fatal=True)


def stats(epoch: int) -> str:
    return json.dumps({"eos": {"idemp_state": "Assigned", "producer_epoch": epoch}})


def test_a_fatal_error_replaces_the_client_at_once_then_with_backoff() -> None:
    clock = Clock()
    life = make(clock)
    first = life.client
    life.client.config["error_cb"](fatal())  # librdkafka calls the error_cb it was given
    assert life.condemned and not life.status().ready
    assert life.recover()  # the first rebuild does not wait
    assert first.disposed and life.client is not first
    assert life.status().state is ClientState.STARTING and life.status().rebuilds == 1

    life.note_delivery(fatal())  # the fresh one fails too: the next rebuild waits
    assert not life.recover()
    clock.now += 1.0  # rng 1.0: the full base delay
    assert life.recover()
    assert life.status().rebuilds == 2


def test_the_first_success_resets_the_backoff_and_the_bound() -> None:
    clock = Clock()
    life = make(clock)
    for _ in range(3):
        life.condemn("broken")
        clock.now += 10
        assert life.recover()
    life.note_delivery(None)
    assert life.status().state is ClientState.OK
    life.condemn("broken again")
    assert life.recover()  # no backoff left over from before the success
    life.condemn("and again")
    clock.now += 55  # 30 s before the success + 55 s would be past the 60 s bound
    assert life.recover()
    assert not life.gave_up


def test_recovery_gives_up_past_the_bound() -> None:
    clock = Clock()
    life = make(clock)
    life.condemn("broken")
    assert life.recover()
    life.condemn("still broken")
    clock.now += POLICY.give_up_after_seconds
    assert not life.recover()
    assert life.gave_up
    assert life.status().state is ClientState.GAVE_UP and not life.status().ready
    life.note_delivery(None)  # a late report of the old client changes nothing
    assert life.gave_up


def test_an_epoch_storm_condemns_an_idempotent_producer() -> None:
    life = make(Clock(), watch_epoch=True)
    on_stats = life.client.config["stats_cb"]
    assert life.client.config["statistics.interval.ms"] == POLICY.stats_interval_ms
    on_stats(stats(0))
    on_stats(stats(3))  # an epoch bump now and then is normal
    assert not life.condemned
    on_stats(stats(40))  # UNKNOWN_PRODUCER_ID loop after a memory broker restart
    assert life.condemned
    assert "epoch" in life.status().detail


@pytest.mark.parametrize(
    ("error", "condemned"),
    [
        (KafkaError(KafkaError._MSG_TIMED_OUT), True),  # fate unknown, client suspect
        (fatal(), True),
        (KafkaError(KafkaError._PURGE_QUEUE), False),  # our own purge of a replaced client
        (KafkaError(KafkaError._PURGE_INFLIGHT), False),
        (KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), False),  # about the record, not the client
        (KafkaError(KafkaError._UNKNOWN_PARTITION), False),
    ],
)
def test_which_delivery_errors_condemn_the_client(error: KafkaError, condemned: bool) -> None:
    life = make(Clock())
    life.note_delivery(error)
    assert life.condemned is condemned


@pytest.mark.parametrize(
    ("error", "condemned"),
    [
        (KafkaError(KafkaError._ALL_BROKERS_DOWN), False),  # librdkafka reconnects itself
        (KafkaError(KafkaError._TRANSPORT), False),
        (fatal(KafkaError.UNKNOWN_PRODUCER_ID), True),
    ],
)
def test_which_error_callbacks_condemn_the_client(error: KafkaError, condemned: bool) -> None:
    life = make(Clock())
    life.client.config["error_cb"](error)
    assert life.condemned is condemned


def test_an_exception_from_poll_or_flush_condemns_the_client() -> None:
    life = make(Clock())
    life.note_exception(KafkaException(fatal()))
    assert life.condemned
    assert "sequence desynchronization" in life.status().detail


def test_a_failed_rebuild_is_retried_later() -> None:
    clock = Clock()
    builds: list[int] = []

    def build(config: dict[str, Any]) -> FakeClient:
        builds.append(1)
        if len(builds) == 2:
            raise KafkaException(KafkaError(KafkaError._RESOLVE))
        return FakeClient(config)

    life: ClientLifecycle[FakeClient] = ClientLifecycle(
        "consumer", build, {}, policy=POLICY, clock=clock, rng=lambda: 1.0
    )
    life.condemn("fatal")
    assert not life.recover()
    assert life.condemned
    clock.now += POLICY.backoff_cap_seconds
    assert life.recover()
    assert len(builds) == 3
