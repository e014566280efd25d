"""The lookup endpoint's token bucket: a burst, then one request per refill, per client."""

from __future__ import annotations

import uuid
from typing import Any, cast

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from producers.ingest import WebhookIngestor
from producers.pixel_endpoint import PixelEndpoints, RateLimiter
from producers.responses import NotFoundError


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


class FakeTenants:
    """Stands in for the ingestor's tenant lookup: every tenant is unknown."""

    async def tenant(self, tenant_id: uuid.UUID) -> None:
        raise NotFoundError("unknown tenant")


def test_the_endpoint_answers_429_with_retry_after_once_the_bucket_is_empty() -> None:
    limiter = RateLimiter(per_second=0.0, burst=1, clock=FakeClock())
    endpoints = PixelEndpoints(cast(WebhookIngestor, FakeTenants()), cast(Any, None), limiter)
    app = Starlette(routes=[Route("/pixel/{tenant_id}/{source}/event-id", endpoints.event_id)])
    path = f"/pixel/{uuid.uuid4()}/stripe/event-id?key=cs_1"
    with TestClient(app) as client:
        first, second = client.get(path), client.get(path)
    assert first.status_code == 404
    assert second.status_code == 429
    assert second.headers["retry-after"] == "1"
    assert second.json()["error"]["message"] == "too many requests"
