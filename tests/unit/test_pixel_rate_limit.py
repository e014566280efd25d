"""The lookup endpoint's token bucket: a burst, then one request per refill, per client."""

from __future__ import annotations

from producers.pixel_endpoint import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_client_gets_its_burst_then_the_refill_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_second=2.0, burst=3, clock=clock)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")  # another address has its own bucket
    clock.now += 0.5  # one token back at 2 per second
    assert [limiter.allow("a"), limiter.allow("a")] == [True, False]
    clock.now += 60  # never more than the burst
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
