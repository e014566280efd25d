"""Graph API error bodies as Meta sends them, raised by the emulator's checks.

Subcodes and titles follow section 4 of ``shared/reference/meta-capi.md``. Choices where
Meta's behaviour is not documented (marked [emulator] in the code):

- an unhashed value in a hashed ``user_data`` field, a malformed value and a timestamp
  more than a minute in the future are 100/2804019 ("Server Side Api Parameter Error")
  with the JSON path in ``error_user_msg``;
- more than 1,000 events is code 100 without a subcode;
- a missing access token is code 104 (Graph's "An access token is required to request
  this resource"), an invalid one 190/467, a version older than v21.0 or newer than the
  latest is code 2635.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

from starlette.responses import Response

__all__ = [
    "SUBCODE_CLICK_ID",
    "SUBCODE_CUSTOMER_INFO",
    "SUBCODE_MESSAGING_EVENT",
    "SUBCODE_PARAMETER",
    "SUBCODE_PURCHASE_VALUE",
    "SUBCODE_TOO_OLD",
    "GraphError",
    "buc_usage_header",
    "graph_response",
    "new_trace_id",
    "param_error",
    "path_of",
]

SUBCODE_CLICK_ID = 2804001
SUBCODE_TOO_OLD = 2804003
SUBCODE_PURCHASE_VALUE = 2804009
SUBCODE_PARAMETER = 2804019
SUBCODE_CUSTOMER_INFO = 2804050
SUBCODE_MESSAGING_EVENT = 2804066


def new_trace_id() -> str:
    """A random id shaped like Meta's ``fbtrace_id``."""
    return "A" + secrets.token_urlsafe(16)[:22]


@dataclass(slots=True)
class GraphError(Exception):
    """One Graph error answer; raised by checks and rendered by ``graph_response``."""

    code: int
    message: str
    subcode: int | None = None
    status_code: int = 400
    title: str | None = None
    user_msg: str | None = None
    is_transient: bool = False
    error_type: str = "OAuthException"
    headers: dict[str, str] = field(default_factory=dict)

    def body(self, trace_id: str) -> dict[str, object]:
        error: dict[str, object] = {
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["is_transient"] = self.is_transient
        if self.title is not None:
            error["error_user_title"] = self.title
        if self.user_msg is not None:
            error["error_user_msg"] = self.user_msg
        error["fbtrace_id"] = trace_id
        return {"error": error}

    @property
    def outcome(self) -> str:
        """A short label for the request log: ``rejected:100/2804003``."""
        code = f"{self.code}/{self.subcode}" if self.subcode is not None else str(self.code)
        return f"rejected:{code}"


def path_of(*parts: str | int) -> str:
    """Meta's JSON path notation: ``$['data'][0]['event_time']``."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f"['{p}']" for p in parts)


def param_error(user_msg: str) -> GraphError:
    """A 100/2804019 schema error whose ``error_user_msg`` names the JSON path."""
    return GraphError(
        code=100,
        subcode=SUBCODE_PARAMETER,
        message="Invalid parameter",
        title="Server Side Api Parameter Error",
        user_msg=user_msg,
    )


def buc_usage_header(minutes: float, *, call_count: int = 100) -> str:
    """An ``X-Business-Use-Case-Usage`` value with one ads_management entry."""
    entry = {
        "type": "ads_management",
        "call_count": call_count,
        "total_cputime": call_count,
        "total_time": call_count,
        "estimated_time_to_regain_access": minutes,
        "ads_api_access_tier": "standard_access",
    }
    return json.dumps({"1000000000000001": [entry]}, separators=(",", ":"))


def graph_response(
    status_code: int, body: dict[str, object], trace_id: str, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response with Meta's trace header."""
    all_headers = {"x-fb-trace-id": trace_id, **(headers or {})}
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status_code,
        media_type="application/json",
        headers=all_headers,
    )
