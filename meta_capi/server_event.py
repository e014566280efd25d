"""One Meta server event and its exact JSON shape (reference §2)."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from capi_stream.errors import EventValidationError
from capi_stream.event import ActionSource, MessagingChannel

__all__ = ["ServerEvent", "to_json_number"]


def to_json_number(value: Decimal) -> int | float:
    """Return ``value`` as an int or float whose JSON text equals the decimal exactly.

    Whole amounts become ``int`` (exact at any size). Others become the float whose shortest
    repr reads back as the same Decimal; money with at most 15 significant digits always
    does. A value that would lose precision is refused rather than rounded silently.

    Raises:
        EventValidationError: the value is not finite or does not survive as a float.
    """
    if not value.is_finite():
        raise EventValidationError(f"{value} is not a finite number", field="custom_data")
    return _finite_json_number(value)


# Cached: prices recur, and each event's amount is converted for its row and its request.
# Equal Decimals ('5', '5.00') convert alike, so they may share an entry.
@functools.lru_cache(maxsize=4_096)
def _finite_json_number(value: Decimal) -> int | float:
    if value == value.to_integral_value():
        return int(value)
    number = float(value)
    if not math.isfinite(number) or Decimal(repr(number)) != value:
        raise EventValidationError(
            f"{value} cannot be sent as a JSON number without losing precision",
            field="custom_data",
        )
    return number


# Values that are JSON already; checked first as exact types (cheaper than the ABC checks).
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _jsonable(value: object) -> object:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, Decimal):
        return to_json_number(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """One event for ``POST /{pixel_id}/events``, with ``user_data`` already hashed.

    Money (``custom_data['value']`` and any other amount) is a ``Decimal`` here and becomes a
    JSON number only in ``to_payload``. Build instances with the ``create_*_event`` builders,
    which also validate them.
    """

    event_name: str
    event_time: int
    action_source: ActionSource
    user_data: Mapping[str, str | list[str]]
    event_id: str | None = None
    custom_data: Mapping[str, object] = field(default_factory=dict)
    event_source_url: str | None = None
    referrer_url: str | None = None
    messaging_channel: MessagingChannel | None = None
    opt_out: bool | None = None
    data_processing_options: tuple[str, ...] | None = None
    data_processing_options_country: int | None = None
    data_processing_options_state: int | None = None

    def to_payload(self) -> dict[str, object]:
        """Return the JSON object Meta documents for one entry of ``data``; None fields omitted.

        Raises:
            EventValidationError: a Decimal in ``custom_data`` cannot be a JSON number.
        """
        payload: dict[str, object] = {
            "event_name": self.event_name,
            "event_time": self.event_time,
            "action_source": self.action_source,
        }
        # Key by key rather than filtering a full dict: this runs once per event sent.
        if self.event_id is not None:
            payload["event_id"] = self.event_id
        if self.event_source_url is not None:
            payload["event_source_url"] = self.event_source_url
        if self.referrer_url is not None:
            payload["referrer_url"] = self.referrer_url
        if self.messaging_channel is not None:
            payload["messaging_channel"] = self.messaging_channel
        if self.opt_out is not None:
            payload["opt_out"] = self.opt_out
        payload["user_data"] = {
            k: list(v) if isinstance(v, list) else v for k, v in self.user_data.items()
        }
        if self.custom_data:
            payload["custom_data"] = _jsonable(self.custom_data)
        if self.data_processing_options is not None:
            payload["data_processing_options"] = list(self.data_processing_options)
        if self.data_processing_options_country is not None:
            payload["data_processing_options_country"] = self.data_processing_options_country
        if self.data_processing_options_state is not None:
            payload["data_processing_options_state"] = self.data_processing_options_state
        return payload
