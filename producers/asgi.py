"""The webhook hot path as plain ASGI, in front of the Starlette app that serves the rest.

``POST /webhooks/{tenant_id}/{source}`` is the only route that sees real traffic, and
Starlette's generic layers (two middlewares, the router's regex walk, ``Request`` and
``Response`` objects) cost about as much CPU as the whole webhook itself. ``WebhookApp``
answers that one route straight from the ASGI scope: headers become one dict, the body is
read with the same size limit, and the ``Answer`` goes out as two ASGI messages. Every other
request, lifespan included, goes through Starlette unchanged, as does any path this parser
does not recognise (a ``root_path`` prefix, say), so behaviour never depends on the shortcut.

``capi serve`` turns uvicorn's proxy-headers middleware off and wraps only ``rest`` (the
Starlette side) in it: the pixel's rate limit still sees the client behind a trusted
proxy, and the webhook path, which never reads the client address, does not pay for the
``X-Forwarded-*`` scan on every delivery.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from producers.adapters.base import WebhookRejectedError
from producers.responses import Answer, PayloadTooLargeError
from producers.routes import WebhookEndpoints

__all__ = ["ClientDisconnectedError", "WebhookApp"]

_JSON = (b"content-type", b"application/json")


class ClientDisconnectedError(WebhookRejectedError):
    """The sender went away before its body arrived (nothing is published, nobody reads this)."""

    status_code = 499


def _webhook_path(path: str) -> tuple[str, str] | None:
    """``(tenant_id, source)`` of ``/webhooks/{tenant_id}/{source}``, else None."""
    parts = path.split("/")
    if len(parts) == 4 and parts[0] == "" and parts[1] == "webhooks" and parts[2] and parts[3]:
        return parts[2], parts[3]
    return None


def _headers(scope: Scope) -> dict[str, str]:
    """Lower-case name -> the first value, as Starlette's ``Headers.get`` would answer."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1").lower()
        if key not in headers:
            headers[key] = value.decode("latin-1")
    return headers


def _body_reader(receive: Receive, headers: dict[str, str]) -> Callable[[int], Awaitable[bytes]]:
    async def read(limit: int) -> bytes:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLargeError(f"body larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnectedError("client disconnected")
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(f"body larger than {limit} bytes")
            if not message.get("more_body", False):
                if not chunks:
                    return chunk  # the usual case: the whole body in one message
                chunks.append(chunk)
                return b"".join(chunks)
            chunks.append(chunk)

    return read


async def send_answer(send: Send, answer: Answer) -> None:
    headers = [_JSON, (b"content-length", str(len(answer.body)).encode())]
    headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers)
    await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


class WebhookApp(Starlette):
    """Starlette, except that webhook deliveries skip its generic layers (see module doc)."""

    def __init__(self, webhooks: WebhookEndpoints, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.webhooks = webhooks
        # Every other request and the lifespan; a server may wrap it (see module doc).
        self.rest: ASGIApp = partial(Starlette.__call__, self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            target = _webhook_path(scope["path"])
            if target is not None:
                headers = _headers(scope)
                answer = await self.webhooks.answer_webhook(
                    target[0], target[1], headers, _body_reader(receive, headers)
                )
                await send_answer(send, answer)
                return
        await self.rest(scope, receive, send)
