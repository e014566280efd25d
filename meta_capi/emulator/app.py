"""The Graph API emulator: ``POST /{version}/{pixel_id}/events`` plus ``/_emulator`` controls.

Checks run in Meta's order: version, pixel id, injected faults, body parsing, access
token, the pixel's existence (``/_emulator/unknown-pixels``), top-level parameters, then
every event; the first bad event rejects the request.
"""

from __future__ import annotations

import asyncio
import re
import secrets

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meta_capi.emulator.body import parse_data, parse_params
from meta_capi.emulator.control import control_routes
from meta_capi.emulator.faults import DEFAULT_TIMEOUT_DELAY_SECONDS, fault_error
from meta_capi.emulator.graph import GraphError, graph_response, new_trace_id, param_error
from meta_capi.emulator.rules import check_event
from meta_capi.emulator.state import EmulatorState, RecordedEvent, RecordedRequest

__all__ = ["LATEST_VERSION", "OLDEST_VERSION", "create_app"]

OLDEST_VERSION = (21, 0)
LATEST_VERSION = (26, 0)
TOP_LEVEL_KEYS = frozenset(
    {
        "data",
        "access_token",
        "appsecret_proof",
        "test_event_code",
        "partner_agent",
        "namespace_id",
        "upload_id",
        "upload_tag",
        "upload_source",
    }
)
_VERSION = re.compile(r"^v(\d+)\.(\d+)$")


def create_app(state: EmulatorState | None = None) -> Starlette:
    """A Starlette app emulating the Conversions API; ``app.state.emulator`` is the state."""
    emulator = state or EmulatorState()

    async def events(request: Request) -> Response:
        return await _handle_events(request, emulator)

    app = Starlette(
        routes=[
            *control_routes(emulator),
            Route("/{version}/{pixel_id}/events", events, methods=["POST"]),
        ]
    )
    app.state.emulator = emulator
    return app


async def _handle_events(request: Request, state: EmulatorState) -> Response:
    trace_id = new_trace_id()
    pixel_id = request.path_params["pixel_id"]
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    body_keys: tuple[str, ...] = ()
    accepted: list[RecordedEvent] = []
    status, outcome = 200, "accepted"
    try:
        _check_path(request.path_params["version"], pixel_id)
        fault = state.take_fault(pixel_id)
        if fault is not None:
            outcome = f"fault:{fault.kind}"
            if fault.kind in ("slow", "timeout"):
                default = DEFAULT_TIMEOUT_DELAY_SECONDS if fault.kind == "timeout" else 1.0
                await asyncio.sleep(fault.delay_seconds or default)
            if fault.kind in ("http_503", "http_200_unavailable"):
                status = 503 if fault.kind == "http_503" else 200
                _record(state, request, pixel_id, body_keys, content_type, status, outcome, [])
                return Response("Service Unavailable", status_code=status, media_type="text/plain")
            error = fault_error(fault)
            if error is not None:
                raise error
        params = parse_params(content_type, raw, list(request.query_params.multi_items()))
        body_keys = tuple(sorted(params))
        _check_token(params, state)
        if state.is_unknown_pixel(pixel_id):
            raise _unknown_object(pixel_id)
        for key in params:
            if key not in TOP_LEVEL_KEYS:
                raise param_error(f"The parameter $['{key}'] is not a valid parameter")
        if "data" not in params:
            raise param_error("The parameter $['data'] is required")
        events = parse_data(params["data"])
        now = state.clock()
        for index, event in enumerate(events):
            check_event(event, index, now)
        request_id = secrets.token_hex(8)
        accepted = [
            RecordedEvent(
                pixel_id=pixel_id,
                payload=event,
                test_event_code=_opt_str(params.get("test_event_code")),
                partner_agent=_opt_str(params.get("partner_agent")),
                received_at=now,
                request_id=request_id,
            )
            for event in events
        ]
        body: dict[str, object] = {
            "events_received": len(events),
            "messages": [],
            "fbtrace_id": trace_id,
        }
        _record(state, request, pixel_id, body_keys, content_type, 200, outcome, accepted)
        return graph_response(200, body, trace_id)
    except GraphError as error:
        status = error.status_code
        if not outcome.startswith("fault:"):
            outcome = error.outcome
        _record(state, request, pixel_id, body_keys, content_type, status, outcome, [])
        return graph_response(status, error.body(trace_id), trace_id, error.headers)


def _check_path(version: str, pixel_id: str) -> None:
    match = _VERSION.match(version)
    parsed = (int(match.group(1)), int(match.group(2))) if match else None
    if parsed is None or parsed < OLDEST_VERSION or parsed > LATEST_VERSION or parsed[1] != 0:
        raise GraphError(
            code=2635,
            message=f"(#2635) Call to a deprecated or unsupported version {version}. "
            f"Please use a version between v{OLDEST_VERSION[0]}.0 and "
            f"v{LATEST_VERSION[0]}.0.",
        )
    if not pixel_id.isdigit():
        raise _unknown_object(pixel_id)


def _unknown_object(pixel_id: str) -> GraphError:
    """Meta's answer for a pixel that does not exist or that the token may not use."""
    return GraphError(
        code=100,
        subcode=33,
        message=f"Unsupported post request. Object with ID '{pixel_id[:64]}' does not "
        "exist, cannot be loaded due to missing permissions, or does not support this "
        "operation.",
        error_type="GraphMethodException",
    )


def _check_token(params: dict[str, object], state: EmulatorState) -> None:
    token = params.get("access_token")
    if not isinstance(token, str) or not token:
        raise GraphError(code=104, message="An access token is required to request this resource.")
    if state.is_invalid_token(token):
        raise GraphError(
            code=190,
            subcode=467,
            message="Error validating access token: The access token is invalid.",
        )


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _record(
    state: EmulatorState,
    request: Request,
    pixel_id: str,
    body_keys: tuple[str, ...],
    content_type: str,
    status: int,
    outcome: str,
    events: list[RecordedEvent],
) -> None:
    state.record(
        RecordedRequest(
            request_id=events[0].request_id if events else secrets.token_hex(8),
            pixel_id=pixel_id,
            path=request.url.path,
            query_keys=tuple(sorted(request.query_params.keys())),
            body_keys=body_keys,
            content_type=content_type,
            status_code=status,
            outcome=outcome,
            events=len(events),
            received_at=state.clock(),
        ),
        events,
    )
