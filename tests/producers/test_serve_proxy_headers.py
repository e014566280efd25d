"""``capi serve`` applies uvicorn's proxy headers to every route but the webhooks: behind a
trusted proxy the pixel's rate limit still sees the real client (``X-Forwarded-For``)."""

from __future__ import annotations

from typing import Any, cast

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from producers.asgi import WebhookApp
from producers.cli import _behind_proxy
from producers.responses import Answer
from producers.routes import WebhookEndpoints


class FakeWebhooks:
    """Stands in for the webhook endpoints: every delivery is answered 202."""

    async def answer_webhook(self, *_args: Any) -> Answer:
        return Answer(202, b"{}")


async def _client_host(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.client.host if request.client else "none")


def _app(trusted: str) -> TestClient:
    app = WebhookApp(cast(WebhookEndpoints, FakeWebhooks()), routes=[Route("/who", _client_host)])
    return TestClient(_behind_proxy(app, trusted))


def test_a_trusted_proxy_forwards_the_client_to_the_starlette_routes() -> None:
    with _app("*") as client:
        answer = client.get("/who", headers={"x-forwarded-for": "203.0.113.9"})
        assert answer.text == "203.0.113.9"
        assert client.post("/webhooks/t/stripe", content=b"{}").status_code == 202


def test_an_untrusted_peer_cannot_claim_another_address() -> None:
    with _app("127.0.0.1") as client:  # TestClient's peer is "testclient": not trusted
        answer = client.get("/who", headers={"x-forwarded-for": "203.0.113.9"})
        assert answer.text == "testclient"
