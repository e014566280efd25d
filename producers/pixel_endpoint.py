"""``GET /pixel/{tenant_id}/{source}/event-id?key=...``: the ids a thank-you page's pixel needs.

Read-only. It answers the ``event_id`` and ``event_name`` the server sends for that page key
(``capi_stream.pixel``; computable without the server too, by ``capi-pixel.js``) and, for a
source whose key only the buyer's browser holds (Stripe's random ``cs_``/``pi_`` ids), the
SHA-256 ``external_id`` of our contact that the worker sent for that purchase.

What is safe to expose: the event id is derived from the key the caller already has. The
external_id is an opaque hash of a random contact UUID, never an email, phone or name, and it
is answered only for a stored purchase whose capability key the caller presented; no lookup
by email (hash) exists, because anyone knowing an address could then enumerate customers.
Until the worker has stored the purchase the answer says ``"pending": true``; the helper
polls with a deadline.

Browsers: a request whose ``Origin`` is not among the tenant's allowed origins (provider
``pixel``, ``{"allowed_origins": ["https://shop.example"]}``, set by ``capi pixel-origins``)
is refused with 403; an allowed origin gets ``Access-Control-Allow-Origin``. Requests are
rate-limited per client address (token bucket, 429 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import Response

from capi_stream.event import build_event_id
from capi_stream.pixel import (
    PIXEL_PROVIDER,
    PIXEL_SCHEMES,
    PixelKeyError,
    allowed_origins,
    build_source_event_id,
)
from meta_capi.hashing import hash_field
from producers.adapters.base import WebhookRejectedError
from producers.ingest import WebhookIngestor
from producers.responses import NotFoundError, error_response, json_response
from producers.routes import parse_tenant_id
from storage.errors import map_db_errors
from storage.lookups import find_event_contact

__all__ = ["PixelEndpoints", "RateLimiter", "external_id_of"]

SCRIPT_PATH = Path(__file__).resolve().parent / "static" / "capi-pixel.js"
_MAX_CLIENTS = 50_000


class OriginNotAllowedError(WebhookRejectedError):
    """The browser page's origin is not one the tenant allowed (403)."""

    status_code = 403


class RateLimitedError(WebhookRejectedError):
    """Too many lookups from one address (429)."""

    status_code = 429


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per client: ``burst`` at once, refilled at ``per_second``."""

    def __init__(
        self, per_second: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = per_second
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        """Take one token of ``client``'s bucket; False when it is empty."""
        now = self._clock()
        with self._lock:
            if len(self._buckets) >= _MAX_CLIENTS:  # bounded memory under a spray of addresses
                self._buckets.clear()
            bucket = self._buckets.get(client)
            if bucket is None:
                bucket = self._buckets[client] = _Bucket(self._burst, now)
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
            if bucket.tokens < 1:
                return False
            bucket.tokens -= 1
            return True


def external_id_of(contact_id: uuid.UUID) -> str:
    """The ``external_id`` the worker sends for our contact: SHA-256 of the lower-cased id."""
    digest = hash_field("external_id", str(contact_id))
    assert digest is not None  # a UUID's text is never empty
    return digest


def _stored_contact(
    sessions: sessionmaker[Session], tenant_id: uuid.UUID, event_id: str
) -> tuple[bool, uuid.UUID | None]:
    with map_db_errors("event lookup failed"), sessions() as session:
        found = find_event_contact(session, tenant_id, event_id)
    return (found.stored, found.contact_id)


class PixelEndpoints:
    """The pixel routes, bound to the app's tenant lookups and database."""

    def __init__(
        self,
        ingestor: WebhookIngestor,
        sessions: sessionmaker[Session],
        limiter: RateLimiter | None = None,
    ) -> None:
        self._ingestor = ingestor
        self._sessions = sessions
        self._limiter = limiter or RateLimiter(per_second=2.0, burst=30)

    async def event_id(self, request: Request) -> Response:
        """``GET /pixel/{tenant_id}/{source}/event-id?key=...``."""
        cors: dict[str, str] = {"Vary": "Origin"}
        try:
            client = request.client.host if request.client else "unknown"
            if not self._limiter.allow(client):
                raise RateLimitedError("too many requests")
            tenant_id = parse_tenant_id(str(request.path_params["tenant_id"]))
            source = str(request.path_params["source"])
            scheme = PIXEL_SCHEMES.get(source)
            if scheme is None:
                raise NotFoundError(f"source {source!r} has no page-reproducible event id")
            try:
                source_event_id = build_source_event_id(source, request.query_params.get("key", ""))
            except PixelKeyError as exc:
                raise WebhookRejectedError(str(exc), status_code=400) from exc
            info = await self._ingestor.tenant(tenant_id)
            origin = request.headers.get("origin")
            if origin is not None:
                if origin.rstrip("/").lower() not in allowed_origins(info.secrets(PIXEL_PROVIDER)):
                    raise OriginNotAllowedError("origin not allowed for this tenant")
                cors["Access-Control-Allow-Origin"] = origin
            event_id = build_event_id(tenant_id, source, source_event_id)
            payload: dict[str, Any] = {
                "event_id": event_id,
                "event_name": scheme.event_name,
                "source_event_id": source_event_id,
            }
            if scheme.key_is_capability:
                stored, contact_id = await asyncio.to_thread(
                    _stored_contact, self._sessions, tenant_id, event_id
                )
                payload["external_id"] = external_id_of(contact_id) if contact_id else None
                payload["pending"] = not stored or contact_id is None
        except Exception as exc:
            response = error_response(exc)
            response.headers.update(cors)  # an allowed page may read why it was refused
            if isinstance(exc, RateLimitedError):
                response.headers["Retry-After"] = "1"
            return response
        # A page asks once per purchase; a cached answer must not hide a later external_id.
        cors["Cache-Control"] = "no-store"
        return json_response(200, payload, headers=cors)

    async def script(self, _request: Request) -> Response:
        """``GET /pixel/capi-pixel.js``: the helper, for pages that load it from the server."""
        return Response(
            SCRIPT_PATH.read_bytes(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=3600"},
        )
