"""Reading a request to the events edge: JSON, form-encoded or multipart, plus the query."""

from __future__ import annotations

import json
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qsl

from meta_capi.emulator.graph import GraphError, param_error, path_of

__all__ = ["parse_data", "parse_params"]

MAX_EVENTS = 1000


def parse_params(content_type: str, raw: bytes, query: list[tuple[str, str]]) -> dict[str, object]:
    """Merge query parameters with the body's (the body wins), like Graph does.

    Raises:
        GraphError: 100/2804019 when the body cannot be parsed.
    """
    params: dict[str, object] = dict(query)
    media = content_type.split(";", 1)[0].strip().lower()
    if not raw.strip():
        return params
    if media == "application/json" or (not media and raw.lstrip()[:1] == b"{"):
        try:
            body = json.loads(raw)
        except ValueError:
            raise param_error("The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise param_error("The request body must be a JSON object")
        params.update(body)
    elif media == "application/x-www-form-urlencoded":
        try:
            params.update(parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            raise param_error("The form-encoded request body is malformed") from None
    elif media == "multipart/form-data":
        params.update(_multipart(content_type, raw))
    else:
        raise param_error(f"Unsupported content type {media or 'none'}")
    return params


def _multipart(content_type: str, raw: bytes) -> dict[str, str]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + raw)
    if not message.is_multipart():
        raise param_error("The multipart request body is malformed")
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode("utf-8", "replace")
    return fields


def parse_data(value: object) -> list[dict[str, object]]:
    """The ``data`` parameter as a list of event objects (JSON strings are decoded).

    Raises:
        GraphError: 100/2804019 for a malformed array or element, 100 for > 1,000 events.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise param_error(f"The parameter {path_of('data')} must be a JSON array") from None
    if not isinstance(value, list):
        raise param_error(f"The parameter {path_of('data')} must be a JSON array")
    if not value:
        raise param_error(f"The parameter {path_of('data')} must not be empty")
    if len(value) > MAX_EVENTS:
        raise GraphError(
            code=100,
            message="Invalid parameter",
            title="Too Many Events",
            user_msg=f"A request can contain at most {MAX_EVENTS} events; this one had "
            f"{len(value)}. Split the events into several requests.",
        )
    events: list[dict[str, object]] = []
    for index, item in enumerate(value):
        if isinstance(item, str):
            try:
                item = json.loads(item)
            except ValueError:
                raise param_error(
                    f"The parameter {path_of('data', index)} is not valid JSON"
                ) from None
        if not isinstance(item, dict):
            raise param_error(f"The parameter {path_of('data', index)} must be a JSON object")
        events.append(item)
    return events
