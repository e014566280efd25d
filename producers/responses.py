"""Every HTTP answer of the webhook app, and the one place errors become responses.

Error bodies always have the shape ``{"error": {"type": ..., "message": ...}}``. Bad input is
a 4xx; only our own trouble is a 5xx: 503 (with ``Retry-After``) when a dependency is down,
so senders retry, and 500 for a bug. Nothing is ever answered 200 to hide a failure.

An ``Answer`` is a response as plain values (status, body bytes, extra headers): the raw
ASGI webhook path (``producers.asgi``) sends it as it is, Starlette routes wrap it in a
``Response`` (``to_response``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
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
    "Answer",
    "DuplicateDeliveryError",
    "NotFoundError",
    "PayloadTooLargeError",
    "UnsupportedMediaTypeError",
    "accepted",
    "error_answer",
    "error_response",
    "ignored",
    "json_response",
    "to_response",
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


@dataclass(frozen=True, slots=True)
class Answer:
    """A JSON response as plain values; ``headers`` are extra ones (``Retry-After``)."""

    status_code: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def _dumps(payload: dict[str, Any]) -> bytes:
    """orjson, or the standard library (escaping as it goes) for text orjson refuses.

    A reason may quote the sender's own text, which can hold a lone surrogate (JSON's
    "\\ud800" escape decodes to one); orjson refuses that, ``json.dumps`` escapes it back.
    """
    try:
        return orjson.dumps(payload)
    except TypeError:
        return json.dumps(payload, separators=(",", ":")).encode()


def json_response(
    status_code: int, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    """A JSON response (orjson; see ``_dumps``)."""
    return Response(
        _dumps(payload),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


def to_response(answer: Answer) -> Response:
    return Response(
        answer.body,
        status_code=answer.status_code,
        headers=dict(answer.headers) or None,
        media_type="application/json",
    )


def accepted(event_id: str) -> Answer:
    """202: the event is on the topic, acknowledged by every in-sync replica."""
    return Answer(202, b'{"status":"accepted","event_id":' + orjson.dumps(event_id) + b"}")


def ignored(reason: str) -> Answer:
    """200: a valid delivery that is not a conversion; the sender must not retry it."""
    return Answer(200, _dumps({"status": "ignored", "reason": reason}))


def _error(status_code: int, error_type: str, message: str, *headers: tuple[str, str]) -> Answer:
    body = _dumps({"error": {"type": error_type, "message": message}})
    return Answer(status_code, body, headers)


def error_answer(exc: BaseException) -> Answer:
    """Map any exception to its answer; unknown exceptions are logged and answered 500."""
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
            503,
            "unavailable",
            "temporarily unable to accept events; retry later",
            ("Retry-After", str(RETRY_AFTER_SECONDS)),
        )
    if isinstance(exc, HTTPException):
        return _error(exc.status_code, _TYPES.get(exc.status_code, "http_error"), exc.detail)
    logger.error("unhandled error %s", type(exc).__name__, exc_info=exc)
    return _error(500, "internal_error", "internal error")


def error_response(exc: BaseException) -> Response:
    """``error_answer`` as a Starlette ``Response`` (routing's 404/405, probes)."""
    return to_response(error_answer(exc))
