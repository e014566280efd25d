"""validate_server_event on hand-built ServerEvents, is_expired and payload numbers."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from capi_stream.errors import EventValidationError, PermanentError
from meta_capi.server_event import ServerEvent, to_json_number
from meta_capi.validation import (
    MAX_EVENT_AGE,
    MetaEventValidationError,
    is_expired,
    validate_server_event,
)

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
EM = hashlib.sha256(b"john_smith@gmail.com").hexdigest()


def event(**overrides: Any) -> ServerEvent:
    fields: dict[str, Any] = {
        "event_name": "Purchase",
        "event_time": int(NOW.timestamp()),
        "action_source": "system_generated",
        "event_id": "e1",
        "user_data": {"em": [EM]},
        "custom_data": {"value": Decimal("10.00"), "currency": "USD"},
        **overrides,
    }
    return ServerEvent(**fields)


def test_valid_event_passes() -> None:
    validate_server_event(event(), now=NOW)


def test_error_is_a_permanent_event_validation_error() -> None:
    assert issubclass(MetaEventValidationError, EventValidationError)
    assert issubclass(MetaEventValidationError, PermanentError)


@pytest.mark.parametrize(
    ("overrides", "field", "subcode"),
    [
        ({"custom_data": {"currency": "USD"}}, "custom_data.value", 2804009),
        ({"custom_data": {"value": Decimal(1)}}, "custom_data.currency", None),
        ({"custom_data": {"value": 1.5, "currency": "USD"}}, "custom_data.value", None),
        ({"custom_data": {"value": Decimal("NaN"), "currency": "USD"}}, "custom_data.value", None),
        ({"user_data": {"em": ["A" * 64]}}, "user_data.em", None),  # upper-case hex
        ({"user_data": {"em": ["john@x.com"]}}, "user_data.em", None),  # not hashed
        ({"user_data": {"fn": EM, "ln": EM[:32]}}, "user_data.ln", None),
        ({"user_data": {"em": []}}, "user_data.em", None),
        ({"user_data": {"em": [EM], "fbp": ""}}, "user_data.fbp", None),
        ({"user_data": {"em": [EM], "email": "x"}}, "user_data.email", 2804019),
        ({"event_name": " "}, "event_name", 2804019),
        ({"event_time": True}, "event_time", None),
        ({"event_time": 1.5}, "event_time", None),
        ({"data_processing_options": ("LDU",)}, "data_processing_options_country", None),
        (
            {"data_processing_options": ("LDU",), "data_processing_options_country": 1},
            "data_processing_options_state",
            None,
        ),
        ({"data_processing_options": ("XYZ",)}, "data_processing_options", None),
    ],
)
def test_validation_errors(overrides: dict[str, Any], field: str, subcode: int | None) -> None:
    with pytest.raises(MetaEventValidationError) as info:
        validate_server_event(event(**overrides), now=NOW)
    assert info.value.field == field
    assert info.value.subcode == subcode


def test_ldu_with_ip_needs_no_state() -> None:
    validate_server_event(
        event(
            user_data={"em": [EM], "client_ip_address": "203.0.113.9"},
            data_processing_options=("LDU",),
            data_processing_options_country=0,
        ),
        now=NOW,
    )


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        validate_server_event(event(), now=datetime(2026, 11, 10))


def test_is_expired() -> None:
    assert timedelta(days=7) == MAX_EVENT_AGE
    assert not is_expired(NOW - MAX_EVENT_AGE, NOW)
    assert is_expired(NOW - MAX_EVENT_AGE - timedelta(seconds=1), NOW)
    assert is_expired(int((NOW - timedelta(days=8)).timestamp()), NOW)
    assert not is_expired(int(NOW.timestamp()), NOW)


def test_payload_omits_none_and_serialises_decimals() -> None:
    payload = event(
        custom_data={
            "value": Decimal("142.52"),
            "currency": "USD",
            "contents": [{"id": "a", "quantity": 2, "item_price": Decimal("71.26")}],
        },
        data_processing_options=(),
        opt_out=False,
    ).to_payload()
    assert "event_source_url" not in payload
    assert payload["opt_out"] is False
    assert payload["data_processing_options"] == []
    assert json.loads(json.dumps(payload))["custom_data"] == {
        "value": 142.52,
        "currency": "USD",
        "contents": [{"id": "a", "quantity": 2, "item_price": 71.26}],
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("10.00"), 10),
        (Decimal("1E+3"), 1000),
        (Decimal("0.10"), 0.1),
        (Decimal("12345678901234.56"), 12345678901234.56),
        (Decimal("123456789012345678901234567890"), 123456789012345678901234567890),
    ],
)
def test_to_json_number(value: Decimal, expected: float) -> None:
    number = to_json_number(value)
    assert number == expected
    assert type(number) is type(expected)


@pytest.mark.parametrize("value", [Decimal("0.12345678901234567890"), Decimal("Infinity")])
def test_to_json_number_refuses_precision_loss(value: Decimal) -> None:
    with pytest.raises(EventValidationError):
        to_json_number(value)
