"""Which Graph answer becomes which error class: the classification table."""

from __future__ import annotations

import json

import pytest

from capi_stream.errors import PermanentError, RetriableError
from meta_capi.errors import (
    MetaAPIError,
    MetaCredentialsError,
    MetaPermanentError,
    MetaRateLimitedError,
    MetaRetryableError,
    MetaTimeoutError,
    classify_error,
    parse_retry_after,
)


def graph_body(code: int, subcode: int | None = None, *, transient: bool = False) -> bytes:
    error: dict[str, object] = {
        "message": "Invalid parameter",
        "type": "OAuthException",
        "code": code,
        "is_transient": transient,
        "fbtrace_id": "AbCdEf",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return json.dumps({"error": error}).encode()


def buc(*minutes: float) -> dict[str, str]:
    entries = [{"type": "ads_management", "estimated_time_to_regain_access": m} for m in minutes]
    return {"X-Business-Use-Case-Usage": json.dumps({"111": entries[:1], "222": entries[1:]})}


CASES = [
    # (status, body, headers, class, retryable, classification)
    (500, graph_body(1), {}, MetaRetryableError, True, "transient"),
    (503, graph_body(2, transient=True), {}, MetaRetryableError, True, "transient"),
    (400, graph_body(4), {}, MetaRateLimitedError, True, "rate_limited"),
    (400, graph_body(17, 2446079), {}, MetaRateLimitedError, True, "rate_limited"),
    (400, graph_body(32), {}, MetaRateLimitedError, True, "rate_limited"),
    (400, graph_body(613, 1487742), {}, MetaRateLimitedError, True, "rate_limited"),
    (400, graph_body(80000), {}, MetaRateLimitedError, True, "rate_limited"),
    (400, graph_body(80003, 2446079), {}, MetaRateLimitedError, True, "rate_limited"),
    (400, graph_body(80004, 2446079), {}, MetaRateLimitedError, True, "rate_limited"),
    (400, graph_body(341), {}, MetaRateLimitedError, True, "rate_limited"),
    (400, graph_body(368), {}, MetaRetryableError, True, "policy_blocked"),
    (400, graph_body(100, 2804003), {}, MetaPermanentError, False, "invalid_parameter"),
    (400, graph_body(100, 2804009), {}, MetaPermanentError, False, "invalid_parameter"),
    (400, graph_body(100, 2804019), {}, MetaPermanentError, False, "invalid_parameter"),
    (400, graph_body(100, 2804050), {}, MetaPermanentError, False, "invalid_parameter"),
    (400, graph_body(100, 33), {}, MetaPermanentError, False, "invalid_parameter"),
    (400, graph_body(100), {}, MetaPermanentError, False, "invalid_parameter"),
    (400, graph_body(3), {}, MetaPermanentError, False, "permission"),
    (403, graph_body(10), {}, MetaPermanentError, False, "permission"),
    (403, graph_body(200), {}, MetaPermanentError, False, "permission"),
    (403, graph_body(299), {}, MetaPermanentError, False, "permission"),
    (400, graph_body(190, 467), {}, MetaCredentialsError, False, "credentials"),
    (400, graph_body(190, 463), {}, MetaCredentialsError, False, "credentials"),
    (400, graph_body(102), {}, MetaCredentialsError, False, "credentials"),
    (400, graph_body(104), {}, MetaCredentialsError, False, "credentials"),
    (400, graph_body(12345), {}, MetaRetryableError, True, "unknown_code"),
    # Meta's is_transient flag wins over the code, except for credentials
    (400, graph_body(100, transient=True), {}, MetaRetryableError, True, "transient"),
    (400, graph_body(9999, transient=True), {}, MetaRetryableError, True, "transient"),
    (429, b"Too Many Requests", {"Retry-After": "30"}, MetaRateLimitedError, True, "rate_limited"),
    (500, b"<html>oops</html>", {}, MetaRetryableError, True, "server_error"),
    (502, b"", {}, MetaRetryableError, True, "server_error"),
    (503, b"Service Unavailable", {}, MetaRetryableError, True, "server_error"),
    (200, b"Service Unavailable", {}, MetaRetryableError, True, "service_unavailable"),
    (200, b"{}", {}, MetaRetryableError, True, "unexpected_response"),
    (404, b"Not Found", {}, MetaPermanentError, False, "http_client_error"),
    (400, b"not json", {}, MetaPermanentError, False, "http_client_error"),
]


@pytest.mark.parametrize(("status", "body", "headers", "cls", "retryable", "label"), CASES)
def test_classify_error(
    status: int,
    body: bytes,
    headers: dict[str, str],
    cls: type[MetaAPIError],
    retryable: bool,
    label: str,
) -> None:
    error = classify_error(status, body, headers)
    assert type(error) is cls
    assert isinstance(error, MetaAPIError)
    assert isinstance(error, RetriableError) is retryable
    assert isinstance(error, PermanentError) is not retryable
    assert error.retryable is retryable
    assert error.classification == label
    assert error.status_code == status


def test_fields_are_carried() -> None:
    body = {
        "error": {
            "message": "Invalid parameter",
            "type": "OAuthException",
            "code": 100,
            "error_subcode": 2804003,
            "is_transient": False,
            "error_user_title": "Event Timestamp Too Old",
            "error_user_msg": "within 7 days",
            "fbtrace_id": "A6Uy",
        }
    }
    error = classify_error(400, body, None)
    assert (error.code, error.error_subcode, error.subcode) == (100, 2804003, 2804003)
    assert error.fbtrace_id == "A6Uy"
    assert error.error_user_title == "Event Timestamp Too Old"
    assert error.error_user_msg == "within 7 days"
    assert error.is_transient is False
    assert "2804003" in str(error)


def test_credentials_message_says_rotate() -> None:
    error = classify_error(400, graph_body(190, 467), {})
    assert "rotate" in error.message


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (buc(5), 300.0),
        (buc(2, 7), 420.0),
        (buc(0), 0.0),
        ({"x-business-use-case-usage": json.dumps({"1": [{"type": "x"}]})}, None),
        ({"X-Ad-Account-Usage": json.dumps({"reset_time_duration": 90})}, 90.0),
        ({"Retry-After": "12"}, 12.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # an HTTP-date in the past
        ({"Retry-After": "soon"}, None),
        ({"X-Business-Use-Case-Usage": "not json", "Retry-After": "3"}, 3.0),
        ({}, None),
        (None, None),
    ],
)
def test_rate_limit_wait(headers: dict[str, str] | None, expected: float | None) -> None:
    assert parse_retry_after(headers) == expected
    error = classify_error(400, graph_body(80004, 2446079), headers)
    assert isinstance(error, MetaRateLimitedError)
    assert error.retry_after_seconds == expected


def test_hierarchy() -> None:
    assert issubclass(MetaTimeoutError, MetaRetryableError)
    assert issubclass(MetaRateLimitedError, RetriableError)
    assert issubclass(MetaCredentialsError, PermanentError)
    assert not issubclass(MetaPermanentError, RetriableError)
