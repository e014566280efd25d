"""HTTP endpoints: the webhook handler and the probes. Answers come from ``producers.responses``.

``answer_webhook`` does the HTTP-only checks (size, media type, path) and hands the bytes to
``WebhookIngestor``. It is transport-neutral: the raw ASGI path (``producers.asgi``) calls it
for every ``POST /webhooks/...`` and the Starlette route wraps it for anything routing sends
there. The body is read incrementally and reading stops as soon as it passes the limit, so
an oversized upload costs at most ``limit`` bytes of memory.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from producers.adapters.base import Ignored
from producers.health import ReadinessProbe
from producers.ingest import WebhookIngestor
from producers.metrics import CONTENT_TYPE_LATEST, WebhookMetrics
from producers.responses import (
    Answer,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    accepted,
    error_answer,
    ignored,
    json_response,
    to_response,
)

__all__ = ["BodyReader", "WebhookEndpoints"]

# Reads the request body, raising PayloadTooLargeError past the limit it is given.
BodyReader = Callable[[int], Awaitable[bytes]]

logger = logging.getLogger(__name__)

# Every source's real sender declares JSON (reference/webhook-sources.md): Stripe sends
# "application/json; charset=utf-8", GHL, Perspective and ManyChat's External Request send
# JSON POSTs, Make.com forwards Denefits with "application/json". None is known to send
# text/plain or no type, so those are refused like forms and XML, for every source.
_JSON_TYPE = "application/json"
# RFC 8259 section 8.1: JSON exchanged between systems is UTF-8; any other charset lies.
_JSON_CHARSETS = frozenset({"utf-8", "utf8"})


def check_media_type(content_type: str | None) -> None:
    """Accept ``application/json`` or a ``+json`` type, with no charset or UTF-8.

    Raises:
        UnsupportedMediaTypeError: no declared type, text/plain, a form, XML, another charset.
    """
    if not content_type or not content_type.strip():
        raise UnsupportedMediaTypeError("body must be JSON: send Content-Type: application/json")
    media, _, parameters = content_type.partition(";")
    media = media.strip().lower()
    if media != _JSON_TYPE and not media.endswith("+json"):
        raise UnsupportedMediaTypeError(f"body must be JSON, not {media or 'an empty type'}")
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            if charset not in _JSON_CHARSETS:
                raise UnsupportedMediaTypeError(f"JSON must be UTF-8, not charset={charset}")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or 413 as soon as it is known to be larger than ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_tenant_id(raw: str) -> uuid.UUID:
    """The path's tenant id; anything that is not a UUID is an unknown tenant (404)."""
    try:
        return _tenant_uuid(raw)
    except ValueError:
        raise NotFoundError("unknown tenant") from None


# A few tenants send every webhook: their ids are parsed once (``uuid.UUID`` costs more than
# the rest of the path checks together). Bounded, and a refused id is never cached.
_tenant_uuid = functools.lru_cache(maxsize=4096)(uuid.UUID)


class WebhookEndpoints:
    """The route handlers, bound to one app's services."""

    def __init__(
        self,
        ingestor: WebhookIngestor,
        metrics: WebhookMetrics,
        probe: ReadinessProbe,
        openapi: dict[str, Any],
        max_body_bytes: int,
    ) -> None:
        self._ingestor = ingestor
        self._metrics = metrics
        self._probe = probe
        self._openapi = openapi
        self._limit = max_body_bytes

    async def webhook(self, request: Request) -> Response:
        """``POST /webhooks/{tenant_id}/{source}`` when Starlette routes it."""
        answer = await self.answer_webhook(
            str(request.path_params["tenant_id"]),
            str(request.path_params["source"]),
            request.headers,
            lambda limit: read_body(request, limit),
        )
        return to_response(answer)

    async def answer_webhook(
        self, raw_tenant: str, source: str, headers: Mapping[str, str], read: BodyReader
    ) -> Answer:
        """One delivery; ``headers`` have lower-case names. Never raises."""
        label = self._metrics.label(source)
        self._metrics.count_request(label)
        try:
            tenant_id = parse_tenant_id(raw_tenant)
            self._ingestor.adapter(source)
            # After the path: an unknown source or tenant id is a 404 whatever the body.
            check_media_type(headers.get("content-type"))
            body = await read(self._limit)
            result = await self._ingestor.handle(tenant_id, source, body, headers)
        except Exception as exc:  # every failure becomes its mapped answer, never a crash
            answer = error_answer(exc)
            status = answer.status_code
            outcome = "unavailable" if status == 503 else "error" if status == 500 else "rejected"
            self._metrics.record_outcome(label, outcome, status)
            if status >= 500:
                logger.warning("webhook %s answered %d (%s)", label, status, type(exc).__name__)
            elif logger.isEnabledFor(logging.DEBUG):  # a sender's mistake: the dev terminal
                logger.debug(  # shows it, production logs stay quiet
                    "webhook rejected",
                    extra={"source": label, "status": status, "reason": _reason(answer)},
                )
            return answer
        if isinstance(result, Ignored):
            self._metrics.record_outcome(label, "ignored", 200)
            return ignored(result.reason)
        self._metrics.record_outcome(label, "accepted", 202)
        return accepted(result.event_id)

    async def healthz(self, _request: Request) -> Response:
        """Liveness: answers while the event loop runs."""
        return json_response(200, {"status": "ok"})

    async def readyz(self, _request: Request) -> Response:
        """Readiness: the broker and the database answer (cached for a second or two)."""
        state = await self._probe.check()
        self._metrics.record_readiness(state.broker == "ok", state.database == "ok")
        payload = {
            "status": "ready" if state.ready else "unavailable",
            "broker": state.broker,
            "database": state.database,
        }
        return json_response(200 if state.ready else 503, payload)

    async def metrics(self, _request: Request) -> Response:
        return Response(self._metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, _request: Request) -> Response:
        return json_response(200, self._openapi)


def _reason(answer: Answer) -> str:
    """The message of an error answer's ``{"error": {"type", "message"}}`` body."""
    try:
        return str(json.loads(answer.body)["error"]["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return ""
