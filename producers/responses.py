"""Every HTTP answer of the webhook app, and the one place errors become responses.

Error bodies always have the shape ``{"error": {"type": ..., "message": ...}}``. Bad input is
a 4xx; only our own trouble is a 5xx: 503 (with ``Retry-After``) when a dependency is down,
so senders retry, and 500 for a bug. Nothing is ever answered 200 to hide a failure.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.responses import Response

from capi_stream.errors import (
    ConfigurationError,
    DependencyUnavailableError,
    UnknownTenantError,
)
from producers.adapters.base import SignatureError, WebhookRejectedError

__all__ = [
    "DuplicateDeliveryError",
    "NotFoundError",
    "PayloadTooLargeError",
    "UnsupportedMediaTypeError",
    "accepted",
    "error_response",
    "ignored",
    "json_response",
]

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


class NotFoundError(WebhookRejectedError):
    """No such tenant, source or route (404)."""

    status_code = 404


class DuplicateDeliveryError(WebhookRejectedError):
    """A signed delivery id seen before (GHL's replay rule), 409."""

    status_code = 409


class PayloadTooLargeError(WebhookRejectedError):
    """The body exceeds ``webhook_max_body_bytes`` (413)."""

    status_code = 413


class UnsupportedMediaTypeError(WebhookRejectedError):
    """The body is declared as something other than JSON (415)."""

    status_code = 415


# The stable ``error.type`` for each status code an adapter or the app may reject with.
_TYPES = {
    400: "invalid_payload",
    401: "invalid_signature",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "duplicate_delivery",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable_payload",
}


def json_response(
    status_code: int, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    """A JSON response serialised with orjson (the hot path answers thousands a second)."""
    return Response(
        orjson.dumps(payload), status_code=status_code, headers=headers,
        media_type="application/json",
    )  # fmt: skip


def accepted(event_id: str) -> Response:
    """202: the event is on the topic, acknowledged by every in-sync replica."""
    return json_response(202, {"status": "accepted", "event_id": event_id})


def ignored(reason: str) -> Response:
    """200: a valid delivery that is not a conversion; the sender must not retry it."""
    return json_response(200, {"status": "ignored", "reason": reason})


def _error(status_code: int, error_type: str, message: str, **headers: str) -> Response:
    body = {"error": {"type": error_type, "message": message}}
    return json_response(status_code, body, headers or None)


def error_response(exc: BaseException) -> Response:
    """Map any exception to its response; unknown exceptions are logged and answered 500."""
    if isinstance(exc, WebhookRejectedError):
        status = exc.status_code
        if isinstance(exc, SignatureError):
            status = 401
        return _error(status, _TYPES.get(status, "rejected"), exc.reason)
    if isinstance(exc, UnknownTenantError):
        return _error(404, "not_found", "unknown tenant")
    if isinstance(exc, ConfigurationError):
        return _error(403, "not_configured", str(exc))
    if isinstance(exc, DependencyUnavailableError):
        return _error(
            503, "unavailable", "temporarily unable to accept events; retry later",
            **{"Retry-After": str(RETRY_AFTER_SECONDS)},
        )  # fmt: skip
    if isinstance(exc, HTTPException):
        return _error(exc.status_code, _TYPES.get(exc.status_code, "http_error"), exc.detail)
    logger.error("unhandled error %s", type(exc).__name__, exc_info=exc)
    return _error(500, "internal_error", "internal error")
