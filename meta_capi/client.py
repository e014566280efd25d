"""Synchronous Conversions API client: one pixel, pooled connections, typed errors.

``send_event`` raises; ``send_events`` never raises for Meta's answers and returns a
``BatchOutcome`` mapping every input index to "sent" or to the error that routes it.

Because Meta rejects a whole request when one event is invalid (code 100), a rejected
multi-event request is narrowed: if Meta's message names ``$['data'][N]`` that event is
failed and the rest resent, otherwise the request is bisected, so valid events still go
through. Events of a rejected request were not ingested, so resending cannot double-count.
Rate-limit and credential errors stop the call: the remaining events fail with that error
without being sent (Meta: once throttled, stop calling; more calls extend the block).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TypedDict, Unpack

import httpx
import orjson
from pydantic import SecretBytes, SecretStr

from capi_stream.errors import ConfigurationError
from meta_capi._narrowing import NarrowingRun
from meta_capi._results import BatchOutcome, EventInput, SendResult, SupportsPayload
from meta_capi.errors import (
    MetaAPIError,
    MetaPermanentError,
    MetaRateLimitedError,
    MetaRetryableError,
    MetaTimeoutError,
    classify_error,
)

__all__ = [
    "DEFAULT_API_VERSION",
    "DEFAULT_GRAPH_URL",
    "MAX_EVENTS_PER_REQUEST",
    "BatchOutcome",
    "EventInput",
    "MetaCAPIClient",
    "MetaClientOptions",
    "SendResult",
    "SupportsPayload",
]

logger = logging.getLogger(__name__)

DEFAULT_GRAPH_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v26.0"
MAX_EVENTS_PER_REQUEST = 1000
_VERSION = re.compile(r"^v\d+\.\d+$")
_USER_AGENT = "capi-stream-meta-capi/0.1"


class MetaClientOptions(TypedDict, total=False):
    """Keyword options of ``MetaCAPIClient`` besides pixel and token (for ``from_tenant``)."""

    test_event_code: str | None
    graph_url: str
    api_version: str
    partner_agent: str | None
    timeout_seconds: float
    max_connections: int
    max_narrowing_requests: int
    transport: httpx.BaseTransport | None


class MetaCAPIClient:
    """Sends server events for one pixel to ``{graph_url}/{api_version}/{pixel_id}/events``.

    The access token travels only in the JSON body, never in the URL, a repr or a log line.
    ``timeout_seconds`` (Meta advises 1.5 s) bounds each phase: connect, write, read, pool.
    Thread-safe: share one client between worker threads of the same pixel.
    """

    def __init__(
        self,
        pixel_id: str,
        access_token: str | SecretStr,
        *,
        test_event_code: str | None = None,
        graph_url: str = DEFAULT_GRAPH_URL,
        api_version: str = DEFAULT_API_VERSION,
        partner_agent: str | None = None,
        timeout_seconds: float = 1.5,
        max_connections: int = 20,
        max_narrowing_requests: int = 100,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        pixel_id = str(pixel_id).strip()
        if not pixel_id.isdigit():
            raise ConfigurationError("Meta pixel_id must be the numeric pixel (dataset) ID")
        if not _VERSION.match(api_version):
            raise ConfigurationError(f"Meta api_version must look like v26.0, not {api_version!r}")
        token = access_token if isinstance(access_token, SecretStr) else SecretStr(access_token)
        if not token.get_secret_value().strip():
            raise ConfigurationError("Meta access token is empty")
        self.pixel_id = pixel_id
        self.test_event_code = test_event_code or None
        self.graph_url = graph_url.rstrip("/")
        self.api_version = api_version
        self.partner_agent = partner_agent or None
        self.timeout_seconds = timeout_seconds
        self.max_narrowing_requests = max_narrowing_requests
        self.url = f"{self.graph_url}/{api_version}/{pixel_id}/events"
        self._blocked_until = 0.0
        self._lock = threading.Lock()
        # Requests are built here once (URL, headers, timeouts) and go out through
        # ``send``: ``post`` would merge URLs and headers and read the cookie jar each time.
        # The client still picks the transport (HTTP(S)_PROXY and NO_PROXY are honoured).
        self._http = httpx.Client(
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )
        self._target = httpx.URL(self.url)
        self._headers = httpx.Headers(
            {"User-Agent": _USER_AGENT, "Content-Type": "application/json"}
        )
        self._timeout = httpx.Timeout(timeout_seconds).as_dict()
        params: dict[str, str] = {"access_token": token.get_secret_value()}
        if self.test_event_code:
            params["test_event_code"] = self.test_event_code
        if self.partner_agent:
            params["partner_agent"] = self.partner_agent
        self._body_tail = SecretBytes(b"]," + orjson.dumps(params)[1:])  # holds the token

    @classmethod
    def from_tenant(
        cls, credentials: Mapping[str, object] | None, **options: Unpack[MetaClientOptions]
    ) -> MetaCAPIClient:
        """Build a client from a tenant's Meta credentials (``pixel_id``, ``capi_access_token``,
        optional ``test_event_code``); ``options`` are the other constructor keywords.

        Raises:
            ConfigurationError: the credentials are absent or a required key is empty.
        """
        if credentials is None:
            raise ConfigurationError(
                "the tenant has no Meta integration: set pixel_id and capi_access_token"
            )
        pixel = credentials.get("pixel_id")
        token = credentials.get("capi_access_token")
        missing = []
        if not (_present(pixel) and (isinstance(pixel, int) or str(pixel).strip().isdigit())):
            missing.append("pixel_id")
        if not (isinstance(token, str | SecretStr) and _present(token)):
            missing.append("capi_access_token")
        if missing:
            raise ConfigurationError(
                f"the tenant's Meta integration is incomplete: missing {', '.join(missing)}"
            )
        test_code = credentials.get("test_event_code")
        if "test_event_code" not in options and isinstance(test_code, str) and test_code:
            options["test_event_code"] = test_code
        assert isinstance(token, str | SecretStr)  # checked above
        return cls(str(pixel), token, **options)

    def __repr__(self) -> str:
        return (
            f"MetaCAPIClient(pixel_id={self.pixel_id!r}, api_version={self.api_version!r}, "
            f"graph_url={self.graph_url!r}, test_event_code={self.test_event_code!r})"
        )

    def __enter__(self) -> MetaCAPIClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def send_event(self, event: EventInput) -> SendResult:
        """Send one event.

        Raises:
            MetaAPIError: a ``MetaRetryableError`` or ``MetaPermanentError`` subclass.
        """
        return self._post([_serialize(event)])

    def send_events(self, events: Iterable[EventInput]) -> BatchOutcome:
        """Send events in requests of at most 1,000; never raises for Meta's answers.

        Returns a ``BatchOutcome`` whose indices are positions in ``events``.
        """
        bodies: list[bytes] = []
        failed: dict[int, MetaAPIError] = {}
        for index, event in enumerate(events):
            try:
                bodies.append(_serialize(event))
            except (TypeError, ValueError) as exc:
                bodies.append(b"")
                failed[index] = MetaPermanentError(
                    f"event is not JSON-serializable: {exc}", classification="unserializable"
                )
        run = NarrowingRun(self._post, bodies, failed, self.max_narrowing_requests)
        valid = [i for i in range(len(bodies)) if i not in failed]
        for start in range(0, len(valid), MAX_EVENTS_PER_REQUEST):
            run.send(valid[start : start + MAX_EVENTS_PER_REQUEST])
        return BatchOutcome(
            total=len(bodies),
            sent=sorted(run.sent),
            failed=dict(sorted(failed.items())),
            result=SendResult.combine(run.results),
            unisolated=frozenset(run.unisolated),
        )

    def _post(self, bodies: list[bytes]) -> SendResult:
        """POST one request of pre-serialized events; the one place httpx errors are mapped."""
        self._check_not_blocked()
        request = httpx.Request(
            "POST",
            self._target,
            headers=self._headers,
            content=b'{"data":[' + b",".join(bodies) + self._body_tail.get_secret_value(),
            extensions={"timeout": self._timeout},
        )
        try:
            response = self._http.send(request)
        except httpx.TimeoutException as exc:
            raise MetaTimeoutError(
                f"Meta did not answer within {self.timeout_seconds}s ({type(exc).__name__})",
                classification="timeout",
            ) from exc
        except httpx.HTTPError as exc:
            raise MetaRetryableError(
                f"transport error talking to Meta: {type(exc).__name__}: {exc}",
                classification="transport",
            ) from exc
        result = _success(response)
        if result is not None:
            logger.debug(
                "meta pixel=%s events=%d fbtrace_id=%s",
                self.pixel_id,
                len(bodies),
                result.fbtrace_id,
            )
            return result
        error = classify_error(response.status_code, response.content, response.headers)
        logger.info("meta pixel=%s events=%d rejected: %s", self.pixel_id, len(bodies), repr(error))
        if isinstance(error, MetaRateLimitedError) and error.retry_after_seconds:
            with self._lock:
                until = time.monotonic() + error.retry_after_seconds
                self._blocked_until = max(self._blocked_until, until)
        raise error

    def _check_not_blocked(self) -> None:
        remaining = self._blocked_until - time.monotonic()
        if remaining > 0:
            raise MetaRateLimitedError(
                f"Meta rate limit: not calling again for {remaining:.0f}s",
                retry_after_seconds=remaining,
                classification="rate_limited_local",
            )


def _serialize(event: EventInput) -> bytes:
    # Not isinstance(event, SupportsPayload): a runtime Protocol check costs ~5 us an event.
    payload = event if isinstance(event, Mapping) else event.to_payload()
    try:
        # orjson is ~5x faster; it writes NaN and infinities as null where the standard
        # library refuses them, so any null (rare: payloads carry no None) is re-checked.
        text = orjson.dumps(payload if type(payload) is dict else dict(payload))
        if b"null" not in text:
            return text
    except TypeError:  # > 64-bit ints, surrogates, other types: the standard library decides
        pass
    return json.dumps(
        dict(payload), separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _success(response: httpx.Response) -> SendResult | None:
    if not 200 <= response.status_code < 300:
        return None
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict) or "error" in body:
        return None
    received = body.get("events_received")
    if not isinstance(received, int) or isinstance(received, bool):
        return None
    trace = body.get("fbtrace_id")
    messages = body.get("messages")
    return SendResult(
        events_received=received,
        messages=[str(m) for m in messages] if isinstance(messages, list) else [],
        fbtrace_id=trace if isinstance(trace, str) else None,
        fbtrace_ids=[trace] if isinstance(trace, str) else [],
        requests=1,
    )


def _present(value: object) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value().strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, str) and bool(value.strip())
