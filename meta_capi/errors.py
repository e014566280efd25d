"""Errors from Meta's Graph API, and the one function that maps a response to one of them.

    CapiError (capi_stream.errors)
    ├── RetriableError
    │   └── MetaRetryableError          5xx, transport errors, codes 1, 2, 368, unknown
    │       ├── MetaRateLimitedError    codes 4, 17, 32, 341, 613, 80000-80099, HTTP 429
    │       └── MetaTimeoutError        the request timed out (Meta advises 1.5 s)
    └── PermanentError
        └── MetaPermanentError          code 100 (+ subcodes), 3, 10, 200-299, 4xx without body
            └── MetaCredentialsError    codes 190, 102, 104: rotate the access token

Every class also derives from ``MetaAPIError``, so ``except MetaAPIError`` catches all of
them, while routing needs only ``isinstance(err, RetriableError | PermanentError)``.

``classify_error`` is the only place where a status code, a Graph error body and the rate
limit headers become an error class; the table it follows is section 4 of
``shared/reference/meta-capi.md``. Unknown codes are retryable (Meta: "retry non-client
errors"; RudderStack maps unknown codes to 500), except a 4xx with no Graph body at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TypedDict, Unpack

from capi_stream.errors import CapiError, PermanentError, RetriableError
from meta_capi._ratelimit import parse_retry_after

__all__ = [
    "CREDENTIAL_CODES",
    "PERMANENT_CODES",
    "RATE_LIMIT_CODES",
    "RETRYABLE_CODES",
    "MetaAPIError",
    "MetaCredentialsError",
    "MetaPermanentError",
    "MetaRateLimitedError",
    "MetaRetryableError",
    "MetaTimeoutError",
    "classify_error",
    "parse_retry_after",
]

RATE_LIMIT_CODES = frozenset({4, 17, 32, 341, 613})
"""Throttling codes; Business-Use-Case codes 80000-80099 are added by range.

Throttling is the caller's volume, never the event's fault: the worker pauses the tenant for
as long as Meta asks and does not spend one of the event's attempts
(``consumers.pipeline.routing``).
341 ("Application limit reached": Graph says wait and retry, or look at the call volume) is
an application-level limit like 4, so it is throttling too.
"""
CREDENTIAL_CODES = frozenset({102, 104, 190})
"""Session or token errors: 102 session invalid, 104 token missing, 190 token invalid."""
PERMANENT_CODES = frozenset({3, 10, 100})
"""Client errors; permission codes 200-299 are added by range."""
RETRYABLE_CODES = frozenset({1, 2, 368})
"""Documented temporary codes (368 is a policy block: retry slowly and alert)."""


class ErrorFields(TypedDict, total=False):
    """Graph's error fields, as every ``MetaAPIError`` takes them."""

    status_code: int | None
    code: int | None
    error_subcode: int | None
    fbtrace_id: str | None
    is_transient: bool
    error_user_title: str | None
    error_user_msg: str | None
    classification: str


class MetaAPIError(CapiError):
    """Base of every Meta error; carries Graph's fields, never the access token.

    ``classification`` is a short stable label for metrics and dead-letter records, e.g.
    ``invalid_parameter``, ``credentials``, ``rate_limited``, ``server_error``, ``timeout``.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: int | None = None,
        error_subcode: int | None = None,
        fbtrace_id: str | None = None,
        is_transient: bool = False,
        error_user_title: str | None = None,
        error_user_msg: str | None = None,
        classification: str = "unknown",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.error_subcode = error_subcode
        self.fbtrace_id = fbtrace_id
        self.is_transient = is_transient
        self.error_user_title = error_user_title
        self.error_user_msg = error_user_msg
        self.classification = classification

    @property
    def subcode(self) -> int | None:
        """Alias of ``error_subcode`` (the house name for the field)."""
        return self.error_subcode

    @property
    def retryable(self) -> bool:
        """True when sending the same events again later may succeed."""
        return isinstance(self, RetriableError)

    def __str__(self) -> str:
        parts = [self.message]
        if self.code is not None:
            code = f"code={self.code}"
            if self.error_subcode is not None:
                code += f"/{self.error_subcode}"
            parts.append(code)
        if self.status_code is not None:
            parts.append(f"http={self.status_code}")
        if self.error_user_msg:
            parts.append(self.error_user_msg)
        if self.fbtrace_id:
            parts.append(f"fbtrace_id={self.fbtrace_id}")
        return " | ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status_code={self.status_code}, "
            f"code={self.code}, error_subcode={self.error_subcode}, "
            f"classification={self.classification!r})"
        )


class MetaRetryableError(MetaAPIError, RetriableError):
    """Sending again later may succeed; ``retry_after_seconds`` is a hint when Meta gave one."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_seconds: float | None = None,
        **fields: Unpack[ErrorFields],
    ) -> None:
        super().__init__(message, **fields)
        self.retry_after_seconds = retry_after_seconds


class MetaRateLimitedError(MetaRetryableError):
    """Meta throttled the caller; stop calling until ``retry_after_seconds`` have passed.

    ``retry_after_seconds`` comes from ``X-Business-Use-Case-Usage``
    ``estimated_time_to_regain_access`` (minutes, the maximum over all entries), else from
    ``X-Ad-Account-Usage`` or ``Retry-After``; ``None`` when Meta gave no hint.
    """


class MetaTimeoutError(MetaRetryableError):
    """The request to Meta timed out; whether Meta ingested the events is unknown."""


class MetaPermanentError(MetaAPIError, PermanentError):
    """Meta refused the request for a reason that resending cannot fix (e.g. code 100)."""


class MetaCredentialsError(MetaPermanentError):
    """The access token is missing, invalid or expired: rotate the token for this pixel."""


def _is_rate_limit_code(code: int | None) -> bool:
    return code in RATE_LIMIT_CODES or (code is not None and 80000 <= code <= 80099)


def _graph_error(body: object) -> dict[str, object] | None:
    """The ``error`` object of a Graph error body, or None when the body is not one."""
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            return dict(error)
    return None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _body_text(body: object) -> str:
    if isinstance(body, bytes | bytearray):
        return body.decode("utf-8", "replace")
    return body if isinstance(body, str) else ""


def classify_error(
    status_code: int | None, body: object, headers: Mapping[str, str] | None = None
) -> MetaAPIError:
    """Map one failed Graph response to its error class; the single place this happens.

    Args:
        status_code: the HTTP status (None when unknown).
        body: the raw body (bytes or str) or an already-parsed JSON value.
        headers: response headers, for the rate-limit wait.
    """
    error = _graph_error(body)
    if error is None:
        return _classify_without_graph_body(status_code, body, headers)
    code = _int(error.get("code"))
    message = _str(error.get("message")) or "Graph API error"
    cls: type[MetaAPIError]
    if code in CREDENTIAL_CODES:
        cls, label = MetaCredentialsError, "credentials"
        message = f"{message} (rotate the Conversions API access token for this pixel)"
    elif _is_rate_limit_code(code) or status_code == 429:
        cls, label = MetaRateLimitedError, "rate_limited"
    elif error.get("is_transient") is True:
        cls, label = MetaRetryableError, "transient"
    elif code == 100:
        cls, label = MetaPermanentError, "invalid_parameter"
    elif code in PERMANENT_CODES or (code is not None and 200 <= code <= 299):
        cls, label = MetaPermanentError, "permission"
    elif code == 368:
        cls, label = MetaRetryableError, "policy_blocked"
    elif code in RETRYABLE_CODES:
        cls, label = MetaRetryableError, "transient"
    else:
        # Unknown code: Meta says retry non-client errors and we cannot tell this one is
        # the client's fault (RudderStack maps unknown codes to a retryable 500 too).
        cls, label = MetaRetryableError, "unknown_code"
    err = cls(
        message,
        status_code=status_code,
        code=code,
        error_subcode=_int(error.get("error_subcode")),
        fbtrace_id=_str(error.get("fbtrace_id")),
        is_transient=error.get("is_transient") is True,
        error_user_title=_str(error.get("error_user_title")),
        error_user_msg=_str(error.get("error_user_msg")),
        classification=label,
    )
    if isinstance(err, MetaRateLimitedError):
        err.retry_after_seconds = parse_retry_after(headers)
    return err


def _classify_without_graph_body(
    status_code: int | None, body: object, headers: Mapping[str, str] | None
) -> MetaAPIError:
    text = _body_text(body)
    excerpt = text[:200]
    if status_code == 429:
        return MetaRateLimitedError(
            "HTTP 429 Too Many Requests",
            retry_after_seconds=parse_retry_after(headers),
            status_code=status_code,
            classification="rate_limited",
        )
    if status_code is None or status_code >= 500:
        return MetaRetryableError(
            f"Meta server error: {excerpt or 'no body'}",
            status_code=status_code,
            classification="server_error",
        )
    if 200 <= status_code < 300:
        # The SDK notes Graph can answer 200 with "Service Unavailable"; any 2xx that is
        # not a success body is Meta's fault, not the event's.
        label = "service_unavailable" if "Service Unavailable" in text else "unexpected_response"
        return MetaRetryableError(
            f"Meta answered {status_code} without a success body: {excerpt or 'no body'}",
            status_code=status_code,
            classification=label,
        )
    if 400 <= status_code < 500:
        return MetaPermanentError(
            f"HTTP {status_code} without a Graph error body: {excerpt or 'no body'}",
            status_code=status_code,
            classification="http_client_error",
        )
    return MetaRetryableError(
        f"unexpected HTTP {status_code}: {excerpt or 'no body'}",
        status_code=status_code,
        classification="unexpected_response",
    )
