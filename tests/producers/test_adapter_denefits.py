"""Denefits -> Purchase: one per contract at the total commitment, decimal USD, ignores."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from capi_stream.event import ConversionEvent, build_event_id
from producers.adapters import ADAPTERS, Ignored, PayloadError, redact_body
from tests.fixtures.webhooks import (
    TENANT_ID,
    encode,
    fixture_bytes,
    fixture_json,
    make_request,
)

DENEFITS = ADAPTERS["denefits"]


def parse_body(body: bytes, **kwargs: Any) -> ConversionEvent | Ignored:
    return DENEFITS.parse(make_request(body, **kwargs))


def parse_event(name: str) -> ConversionEvent:
    result = parse_body(fixture_bytes("denefits", name))
    assert isinstance(result, ConversionEvent), result
    return result


@pytest.mark.parametrize(
    ("name", "code", "value", "event_time", "email", "phone", "names"),
    [
        (
            "contract_created",
            "TESTCODE0001",
            Decimal("1800"),  # financed 1500 + down payment 300
            datetime(2026, 1, 28, 20, 0, tzinfo=UTC),
            "jane@example.com",
            "5550100000",
            ("Jane", "Doe"),
        ),
        (
            "contract_created_strings",
            "TESTCODE0002",
            Decimal("2650.49"),  # "2,450.50" + "$199.99", exactly
            datetime(2026, 1, 10, 9, 15, tzinfo=UTC),  # > 7 days old: still maps
            "maria@example.com",
            "+15550101",
            ("Maria", "Lopez"),
        ),
    ],
)
def test_contract_created(
    name: str,
    code: str,
    value: Decimal,
    event_time: datetime,
    email: str,
    phone: str,
    names: tuple[str, str],
) -> None:
    event = parse_event(name)
    assert event.event_name == "Purchase"
    assert event.action_source == "other"
    assert event.source_event_id == f"{code}:created"
    assert event.event_id == build_event_id(TENANT_ID, "denefits", f"{code}:created")
    assert event.event_time == event_time
    assert event.custom_data.value == value
    assert event.custom_data.currency == "USD"
    assert event.custom_data.order_id == code
    assert event.source_ids.denefits_contract_code == code
    assert event.user.emails == [email]
    assert event.user.phones == [phone]
    assert (event.user.first_name, event.user.last_name) == names


def test_secret_key_never_reaches_the_event() -> None:
    event = parse_event("contract_created")
    assert "dnf_FAKE_endpoint_secret" not in event.model_dump_json()


def test_redelivery_yields_the_same_event() -> None:
    later = parse_body(
        fixture_bytes("denefits", "contract_created"),
        received_at=datetime(2026, 1, 29, tzinfo=UTC),
    )
    assert later == parse_event("contract_created")


@pytest.mark.parametrize(
    ("financed", "down", "value"),
    [
        (1500, None, Decimal("1500")),
        (None, "300.00", Decimal("300.00")),
        ("1500.5", 0, Decimal("1500.5")),
        ("12,000", "1,000.25", Decimal("13000.25")),
    ],
)
def test_amounts(financed: Any, down: Any, value: Decimal) -> None:
    payload = fixture_json("denefits", "contract_created")
    contract = payload[0]["data"]["contract"]
    contract["financed_amount"], contract["downpayment_amount"] = financed, down
    event = parse_body(encode(payload))
    assert isinstance(event, ConversionEvent)
    assert event.custom_data.value == value


def test_float_json_amounts_stay_exact() -> None:
    body = fixture_bytes("denefits", "contract_created").replace(b"1500", b"1500.10")
    event = parse_body(body.replace(b"300", b"0.20"))
    assert isinstance(event, ConversionEvent)
    assert event.custom_data.value == Decimal("1500.30")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("recurring_payment", "recurring payment"),
        ("contract_status", "contract status change"),
        ("payout", "payout event payout.sent"),
    ],
)
def test_ignored(name: str, reason: str) -> None:
    result = parse_body(fixture_bytes("denefits", name))
    assert isinstance(result, Ignored) and result.reason.startswith(reason)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"webhook_type": "contract.unknown"}, "denefits webhook contract.unknown is not"),
        ({"contract_code": "X"}, "denefits webhook without a type"),
    ],
)
def test_unknown_types_are_ignored(payload: Any, reason: str) -> None:
    result = parse_body(encode(payload))
    assert isinstance(result, Ignored) and result.reason.startswith(reason)


@pytest.mark.parametrize(
    ("contract", "status", "reason"),
    [
        ({"customer_email": "a@example.com", "financed_amount": 1}, 422, "missing contract_code"),
        ({"contract_code": "C1", "customer_email": "a@example.com"}, 400, "contract amount"),
        (
            {"contract_code": "C1", "financed_amount": "abc", "customer_email": "a@b.co"},
            400,
            "amount",
        ),
        (
            {"contract_code": "C1", "financed_amount": "-5", "customer_email": "a@b.co"},
            400,
            "amount",
        ),
        ({"contract_code": "C1", "financed_amount": 1}, 422, "missing identity"),
    ],
)
def test_payload_errors(contract: Any, status: int, reason: str) -> None:
    body = encode({"webhook_type": "contract.created", "data": {"contract": contract}})
    with pytest.raises(PayloadError, match=reason) as info:
        parse_body(body)
    assert info.value.status_code == status


def test_contract_older_than_seven_days_still_maps() -> None:
    event = parse_event("contract_created_strings")
    assert datetime(2026, 1, 28, 20, 5, tzinfo=UTC) - event.event_time > timedelta(days=7)


def test_redact_body_strips_every_secret_key() -> None:
    redacted = redact_body(fixture_bytes("denefits", "contract_created"))
    assert b"secret_key" not in redacted and b"dnf_FAKE" not in redacted
    assert json.loads(redacted)[0]["data"]["contract"]["contract_code"] == "TESTCODE0001"
    assert redact_body(b'not json "secret_key"') == b""
    assert redact_body(b"not json") == b"not json"
