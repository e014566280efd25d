"""The answers Meta gives when it is down or throttling, for injected faults."""

from __future__ import annotations

import json

from meta_capi.emulator.graph import GraphError, buc_usage_header
from meta_capi.emulator.state import FaultSpec

__all__ = ["DEFAULT_TIMEOUT_DELAY_SECONDS", "fault_error"]

DEFAULT_TIMEOUT_DELAY_SECONDS = 5.0

_RATE_LIMITS: dict[str, tuple[int, int | None, str]] = {
    "rate_limit_4": (4, None, "Application request limit reached"),
    "rate_limit_17": (17, 2446079, "User request limit reached"),
    "rate_limit_613": (613, 1487742, "There have been too many calls from this ad-account."),
    "rate_limit_80004": (
        80004,
        2446079,
        "There have been too many calls to this ad-account. Wait a bit and try again.",
    ),
}


def fault_error(fault: FaultSpec) -> GraphError | None:
    """The Graph error for a fault; None for ``slow`` (answer normally after the delay)
    and ``http_503`` / ``http_200_unavailable`` (plain-text bodies, see the app)."""
    kind = fault.kind
    if kind in _RATE_LIMITS:
        code, subcode, message = _RATE_LIMITS[kind]
        headers = {"x-business-use-case-usage": buc_usage_header(fault.retry_minutes)}
        if code == 4:
            headers["x-app-usage"] = json.dumps(
                {"call_count": 100, "total_cputime": 100, "total_time": 100}
            )
        return GraphError(
            code=code,
            subcode=subcode,
            message=f"(#{code}) {message}",
            is_transient=True,
            headers=headers,
        )
    if kind in ("http_500", "timeout"):
        return GraphError(code=1, message="An unknown error occurred", status_code=500)
    if kind == "http_500_garbled":
        # What no column and no header can hold as it is: a NUL and a lone surrogate.
        message = "An unknown error occurred \x00 \ud800"
        return GraphError(code=1, message=message, status_code=500, title="\udfff")
    if kind == "transient_2":
        return GraphError(
            code=2,
            message="An unexpected error has occurred. Please retry your request later.",
            status_code=503,
            is_transient=True,
        )
    return None
