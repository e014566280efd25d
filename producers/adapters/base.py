"""The adapter contract and the helpers every webhook adapter shares.

An adapter turns one webhook request of one source into a :class:`ConversionEvent`, or an
:class:`Ignored` acknowledgement. It is pure: no HTTP, database or broker. The app calls, in
order, ``verify`` (authenticity), ``delivery_id`` (replay rejection) and ``parse``.

    WebhookRejectedError (PermanentError)   answered with HTTP ``status_code`` and ``reason``
    ├── SignatureError                      401: missing, forged or expired credentials
    └── PayloadError                        400 malformed / schema; 422 missing identity or key

Bad input never raises anything but these from ``parse``; ``delivery_id`` never raises.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from capi_stream.errors import PermanentError
from capi_stream.event import ConversionEvent, Source


class WebhookRejectedError(PermanentError):
    """The request is refused; the app answers ``status_code`` with ``reason``."""

    status_code: int = 400

    def __init__(self, reason: str, *, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if status_code is not None:
            self.status_code = status_code


class SignatureError(WebhookRejectedError):
    """The request's signature or shared secret is missing, wrong or expired (401)."""

    status_code = 401


class PayloadError(WebhookRejectedError):
    """The body is malformed or breaks the schema (400), or names nobody (422)."""

    status_code = 400


MALFORMED = 400
UNPROCESSABLE = 422


@dataclass(frozen=True, slots=True)
class Ignored:
    """A valid delivery that is not a conversion: acknowledged with 200, never published."""

    reason: str


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One received webhook: raw bytes, lower-cased header names, aware UTC receipt time."""

    tenant_id: uuid.UUID
    body: bytes
    headers: Mapping[str, str]
    received_at: datetime


class WebhookAdapter(Protocol):
    """One webhook source; see the module docstring for the calling order."""

    source: Source

    def verify(self, request: WebhookRequest, secrets: Mapping[str, Any] | None) -> None:
        """Raise :class:`SignatureError` unless the request is authentic."""
        ...

    def delivery_id(self, request: WebhookRequest) -> str | None:
        """Return the sender's id of this delivery, if it has one; never raises."""
        ...

    def parse(self, request: WebhookRequest) -> ConversionEvent | Ignored:
        """Map the body; raises :class:`PayloadError` for bad input."""
        ...


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def _holds_float(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is float:
            return True
    return False


def load_json(body: bytes) -> Any:
    """Decode a JSON body; numbers with a fraction become ``Decimal``, never ``float``.

    orjson decodes first (about twice as fast, even with the walk that looks for floats);
    a body that gave a float (a fraction, an exponent, an integer past 64 bits) or that
    orjson refuses is decoded again by the standard library, so the values and the errors
    are exactly those of ``json.loads(parse_float=Decimal)``.

    Raises:
        PayloadError: 400 when the bytes are not JSON.
    """
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    else:
        if not _holds_float(payload):
            return payload
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise PayloadError("malformed JSON body", status_code=MALFORMED) from exc


def load_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON object, unwrapping the one-element array some senders use.

    Raises:
        PayloadError: 400 for malformed JSON or any other top-level shape.
    """
    payload = load_json(body)
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    if not isinstance(payload, dict):
        raise PayloadError("body must be a JSON object", status_code=MALFORMED)
    return payload


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (tolerant navigation)."""
    return value if isinstance(value, dict) else {}


def dig(payload: Any, *path: str) -> Any:
    """Follow ``path`` through nested objects; ``None`` as soon as a step is missing."""
    for key in path:
        if not isinstance(payload, dict):
            return None
        payload = payload.get(key)
    return payload


def text(value: Any) -> str | None:
    """A non-empty stripped string from a JSON string or integral number, else ``None``."""
    if value is None:  # the common cases first: this runs dozens of times per webhook
        return None
    if type(value) is str:
        return value.strip() or None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):  # guard: int(Decimal("1e999999999")) would never end
        if value.is_finite() and value.adjusted() < 30 and value == value.to_integral():
            return str(int(value))
        return None
    if isinstance(value, str):
        return value.strip() or None
    return None


def first_text(*values: Any) -> str | None:
    """The first of ``values`` that :func:`text` accepts."""
    for value in values:
        found = text(value)
        if found is not None:
            return found
    return None


def unique(values: Iterable[str | None]) -> list[str]:
    """Present values, de-duplicated, in order."""
    return list(dict.fromkeys(v for v in values if v))


def split_name(full: str | None) -> tuple[str | None, str | None]:
    """Split ``"Jane van Doe"`` into ``("Jane", "van Doe")``."""
    if not full:
        return None, None
    first, _, last = full.partition(" ")
    return first or None, last.strip() or None


_MAX_SECONDS = 100_000_000_000  # larger Unix times are milliseconds (the year 5138 in s)


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from ISO 8601 text or Unix seconds/milliseconds, else ``None``."""
    if type(value) is int and 0 <= value <= _MAX_SECONDS:  # the usual case, made cheap
        return datetime.fromtimestamp(value, tz=UTC)
    try:
        if isinstance(value, int | Decimal) and not isinstance(value, bool):
            seconds = Decimal(value)
            if not seconds.is_finite() or seconds.adjusted() > 15:
                return None
            if seconds > _MAX_SECONDS:  # milliseconds
                seconds /= 1000
            return datetime.fromtimestamp(float(seconds), tz=UTC)
        if isinstance(value, str) and value.strip():
            raw = value.strip()
            if raw.isdigit():
                return parse_time(int(raw))
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError, ArithmeticError):
        return None
    return None


def business_time(received_at: datetime, *candidates: Any) -> datetime:
    """The first parseable candidate time, never later than receipt; else ``received_at``.

    A future time (clock skew, or a meeting's start time sent by mistake) is clamped to
    receipt: Meta documents no tolerance for future ``event_time`` values.
    """
    for candidate in candidates:
        parsed = parse_time(candidate)
        if parsed is not None:
            return min(parsed, received_at)
    return received_at


def _prune(value: dict[str, Any]) -> dict[str, Any]:
    pruned = {}
    for key, item in value.items():
        if item is None:
            continue
        if isinstance(item, dict):
            item = _prune(item)
            if not item:
                continue
        elif isinstance(item, list) and not item:
            continue
        pruned[key] = item
    return pruned


# A contract code names a sale, not a person: nothing else can link a contact through it.
_NOT_PERSON_IDS = frozenset({"denefits_contract_code"})


def _has_identity(fields: Mapping[str, Any]) -> bool:
    user = obj(fields.get("user"))
    person_ids = [v for k, v in obj(fields.get("source_ids")).items() if k not in _NOT_PERSON_IDS]
    return bool(user.get("emails") or user.get("phones") or fields.get("contact_id") or person_ids)


def _summarise(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)[:3]
    ]
    more = exc.error_count() - len(parts)
    return "invalid event: " + "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def build_event(
    request: WebhookRequest, source: Source, source_event_id: str, fields: dict[str, Any]
) -> ConversionEvent:
    """Validate and build the event; ``None``, empty lists and empty objects are dropped.

    Raises:
        PayloadError: 422 when nobody is identified (no email, phone, our contact id or a
            source's contact id); 400 when the model refuses a value (the message names
            fields, never values).
    """
    pruned = _prune(fields)
    if not _has_identity(pruned):
        raise PayloadError("missing identity", status_code=UNPROCESSABLE)
    try:
        return ConversionEvent.create(
            tenant_id=request.tenant_id,
            source=source,
            source_event_id=source_event_id,
            **pruned,
        )
    except ValidationError as exc:
        raise PayloadError(_summarise(exc), status_code=MALFORMED) from exc
