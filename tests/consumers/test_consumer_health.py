"""The worker's probes (``consumers.health``): what makes it live and ready, and why not."""

from __future__ import annotations

import httpx
import pytest

from capi_stream.kafka.lifecycle import ClientState, ClientStatus
from consumers.health import HealthProbes, liveness, readiness, start_health_server

OK = ClientStatus(ClientState.OK, "delivered", 0)
RECOVERING = ClientStatus(ClientState.RECOVERING, "fatal error: fenced", 1)
GAVE_UP = ClientStatus(ClientState.GAVE_UP, "5 rebuilds", 5)


@pytest.mark.parametrize(
    ("stopped", "outage", "consumer", "producer", "assigned", "expected"),
    [
        (False, False, OK, OK, 3, (True, "3 partitions assigned")),
        (False, False, None, None, 2, (True, "2 partitions assigned")),
        (False, False, OK, OK, 0, (False, "0 partitions assigned")),
        (True, True, OK, OK, 3, (False, "stopped by the dead-letter limit")),
        (False, True, RECOVERING, OK, 3, (False, "dependency outage: paused")),
        (False, False, RECOVERING, OK, 3, (False, "consumer recovering: fatal error: fenced")),
        (False, False, OK, GAVE_UP, 3, (False, "forward producer gave up: 5 rebuilds")),
    ],
)
def test_readiness(
    stopped: bool,
    outage: bool,
    consumer: ClientStatus | None,
    producer: ClientStatus | None,
    assigned: int,
    expected: tuple[bool, str],
) -> None:
    clients = [("consumer", consumer), ("forward producer", producer)]
    assert (
        readiness(
            stopped_by_dlq_limit=stopped, in_outage=outage, clients=clients, assigned=assigned
        )
        == expected
    )


def test_liveness_follows_the_loop() -> None:
    assert liveness(1.25) == (True, "last loop 1.2s ago")
    assert liveness(61.0) == (False, "last loop 61.0s ago")


def test_a_taken_port_falls_back_to_a_free_one() -> None:
    probes = HealthProbes(lambda: (True, "live"), lambda: (False, "not yet"), lambda: b"m 1\n")
    first = start_health_server(probes, "127.0.0.1", 0)
    try:
        second = start_health_server(probes, "127.0.0.1", first.port)
        try:
            assert second.port != first.port
            base = f"http://127.0.0.1:{second.port}"
            assert httpx.get(f"{base}/healthz").status_code == 200
            ready = httpx.get(f"{base}/readyz")
            assert (ready.status_code, ready.text) == (503, "not yet\n")
        finally:
            second.stop()
    finally:
        first.stop()
