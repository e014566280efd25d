"""``/_emulator/*`` control endpoints: faults, invalid tokens, unknown pixels, recorded events
and requests."""

from __future__ import annotations

import json
from typing import cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from meta_capi.emulator.state import FAULT_KINDS, EmulatorState, FaultKind

__all__ = ["control_routes"]


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": "bad_request", "message": message}}, status_code=400)


async def _json_object(request: Request) -> dict[str, object] | None:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _number(body: dict[str, object], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"{key} must be a number")


def control_routes(state: EmulatorState) -> list[BaseRoute]:
    """The control routes bound to ``state``."""

    async def add_fault(request: Request) -> Response:
        body = await _json_object(request)
        if body is None:
            return _bad_request("body must be a JSON object")
        kind = body.get("kind")
        if kind not in FAULT_KINDS:
            return _bad_request(f"kind must be one of {sorted(FAULT_KINDS)}")
        pixel = body.get("pixel_id")
        try:
            count = _number(body, "count")
            fault = state.add_fault(
                cast(FaultKind, kind),
                pixel_id=str(pixel) if pixel is not None else None,
                count=int(count) if count is not None else None,
                rate=_number(body, "rate"),
                delay_seconds=_number(body, "delay_seconds"),
                retry_minutes=_number(body, "retry_minutes") or 1.0,
            )
        except ValueError as exc:
            return _bad_request(str(exc))
        return JSONResponse({"fault": fault.to_dict()}, status_code=201)

    async def list_faults(request: Request) -> Response:
        return JSONResponse({"faults": [f.to_dict() for f in state.faults()]})

    async def clear_faults(request: Request) -> Response:
        return JSONResponse({"cleared": state.clear_faults()})

    async def add_invalid_token(request: Request) -> Response:
        body = await _json_object(request)
        token = body.get("token") if body else None
        if not isinstance(token, str) or not token:
            return _bad_request("token must be a non-empty string")
        state.add_invalid_token(token)
        return JSONResponse({"added": True}, status_code=201)

    async def add_unknown_pixel(request: Request) -> Response:
        body = await _json_object(request)
        pixel = body.get("pixel_id") if body else None
        if not isinstance(pixel, str) or not pixel.isdigit():
            return _bad_request("pixel_id must be a string of digits")
        state.add_unknown_pixel(pixel)
        return JSONResponse({"added": True}, status_code=201)

    async def list_events(request: Request) -> Response:
        pixel = request.query_params.get("pixel_id")
        return JSONResponse(
            {"events": [e.to_dict() for e in state.events(pixel)], "counts": state.event_counts()}
        )

    async def clear_events(request: Request) -> Response:
        state.clear_events()
        return JSONResponse({"cleared": True})

    async def list_requests(request: Request) -> Response:
        pixel = request.query_params.get("pixel_id")
        return JSONResponse(
            {
                "counts": state.request_counts(),
                "requests": [r.to_dict() for r in state.requests(pixel)],
            }
        )

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"reset": True})

    return [
        Route("/_emulator/faults", add_fault, methods=["POST"]),
        Route("/_emulator/faults", list_faults, methods=["GET"]),
        Route("/_emulator/faults", clear_faults, methods=["DELETE"]),
        Route("/_emulator/invalid-tokens", add_invalid_token, methods=["POST"]),
        Route("/_emulator/unknown-pixels", add_unknown_pixel, methods=["POST"]),
        Route("/_emulator/events", list_events, methods=["GET"]),
        Route("/_emulator/events", clear_events, methods=["DELETE"]),
        Route("/_emulator/requests", list_requests, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
    ]
