"""HTTP endpoints: the webhook route and the probes. Responses come from ``producers.responses``.

The webhook route does the HTTP-only checks (size, media type, path) and hands the bytes to
``WebhookIngestor``. The body is read incrementally and reading stops as soon as it passes
the limit, so an oversized upload costs at most ``limit`` bytes of memory.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from producers.adapters.base import Ignored
from producers.health import ReadinessProbe
from producers.ingest import WebhookIngestor
from producers.metrics import CONTENT_TYPE_LATEST, WebhookMetrics
from producers.responses import (
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    accepted,
    error_response,
    ignored,
    json_response,
)

__all__ = ["WebhookEndpoints"]

logger = logging.getLogger(__name__)

# Media types that may carry a JSON body; some senders label JSON as text/plain or send none.
_JSON_TYPES = frozenset({"", "application/json", "text/plain", "application/octet-stream"})


def check_media_type(content_type: str | None) -> None:
    """Accept JSON, ``+json``, text/plain or no declared type at all.

    Raises:
        UnsupportedMediaTypeError: a form, XML or any other declared type.
    """
    if not content_type:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media in _JSON_TYPES or media.endswith("+json"):
        return
    raise UnsupportedMediaTypeError("body must be JSON")


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
        return uuid.UUID(raw)
    except ValueError:
        raise NotFoundError("unknown tenant") from None


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
        """``POST /webhooks/{tenant_id}/{source}``."""
        source = str(request.path_params["source"])
        label = self._metrics.label(source)
        self._metrics.requests.labels(label).inc()
        try:
            check_media_type(request.headers.get("content-type"))
            tenant_id = parse_tenant_id(str(request.path_params["tenant_id"]))
            self._ingestor.adapter(source)
            body = await read_body(request, self._limit)
            result = await self._ingestor.handle(tenant_id, source, body, request.headers)
        except Exception as exc:  # every failure becomes its mapped response, never a crash
            response = error_response(exc)
            outcome = "unavailable" if response.status_code == 503 else "rejected"
            if response.status_code == 500:
                outcome = "error"
            self._metrics.record_outcome(label, outcome, response.status_code)
            if response.status_code >= 500:
                logger.warning("webhook %s answered %d (%s)", label, response.status_code,
                               type(exc).__name__)  # fmt: skip
            return response
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
