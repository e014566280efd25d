"""Serve's readiness follows the producer's own state, not only a cached metadata call."""

from __future__ import annotations

import asyncio

from sqlalchemy import create_engine

from capi_stream.errors import DependencyUnavailableError
from capi_stream.kafka.lifecycle import ClientState, ClientStatus
from producers.health import Readiness, ReadinessProbe


class FakePublisher:
    """A ``BrokerCheck``: its state and whether the broker answers are set by the test."""

    def __init__(self) -> None:
        self.state = ClientState.OK
        self.rebuilds = 0
        self.broker_up = True
        self.checks = 0

    def status(self) -> ClientStatus:
        return ClientStatus(self.state, "test", self.rebuilds)

    def check_broker(self, timeout: float) -> None:
        self.checks += 1
        if not self.broker_up or self.state not in (ClientState.OK, ClientState.STARTING):
            raise DependencyUnavailableError("down")


def probe_of(publisher: FakePublisher) -> ReadinessProbe:
    engine = create_engine("sqlite://")
    return ReadinessProbe(publisher, engine, cache_seconds=3600.0, clock=lambda: 0.0)


def test_a_producer_being_replaced_is_unavailable_despite_a_cached_ok() -> None:
    publisher = FakePublisher()
    probe = probe_of(publisher)
    assert asyncio.run(probe.check()) == Readiness("ok", "ok")
    publisher.state = ClientState.RECOVERING  # condemned: a metadata call would still succeed
    assert asyncio.run(probe.check()).broker == "unavailable"
    publisher.state = ClientState.GAVE_UP
    assert not asyncio.run(probe.check()).ready


def test_a_rebuilt_producer_is_asked_afresh() -> None:
    publisher = FakePublisher()
    probe = probe_of(publisher)
    asyncio.run(probe.check())
    asyncio.run(probe.check())
    assert publisher.checks == 1  # cached
    publisher.rebuilds, publisher.state = 1, ClientState.STARTING
    assert asyncio.run(probe.check()).ready
    assert publisher.checks == 2
