"""Perspective -> InitiateCheckout: documented and observed shapes, keys, hidden fields."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest

from capi_stream.event import ConversionEvent, build_event_id
from producers.adapters import ADAPTERS, Ignored, PayloadError
from tests.fixtures.webhooks import (
    RECEIVED_AT,
    TENANT_ID,
    encode,
    fixture_bytes,
    fixture_json,
    make_request,
)

PERSPECTIVE = ADAPTERS["perspective"]
CONVERTED = datetime(2026, 1, 28, 14, 33, 10, tzinfo=UTC)


def parse_body(body: bytes) -> ConversionEvent | Ignored:
    return PERSPECTIVE.parse(make_request(body))


def parse_event(name: str) -> ConversionEvent:
    result = parse_body(fixture_bytes("perspective", name))
    assert isinstance(result, ConversionEvent), result
    return result


def test_documented_shape() -> None:
    event = parse_event("documented")
    assert event.event_name == "InitiateCheckout"
    assert event.source_event_id == "LVNG_BOF_Calendly:ps_contact_FAKE0001:converted"
    assert event.event_id == build_event_id(TENANT_ID, "perspective", event.source_event_id)
    assert event.event_time == CONVERTED  # meta.convertedAt
    assert event.action_source == "other"
    assert event.user.emails == ["jane@example.com"]
    assert event.source_ids.perspective_contact_id == "ps_contact_FAKE0001"
    assert event.custom_data.content_name == "LVNG_BOF_Calendly"


def test_observed_shape_with_hidden_fields() -> None:
    event = parse_event("observed")
    email_key = hashlib.sha256(b"jane@example.com").hexdigest()[:32]
    assert event.source_event_id == f"fn_FAKE0001:email-{email_key}:converted"
    assert "jane" not in event.source_event_id.lower()  # no raw PII in the key
    assert event.event_time == CONVERTED  # values.ps_converted_at
    assert event.user.emails == ["Jane@Example.com"]  # raw here; meta_capi normalises
    assert event.user.phones == ["+1 555 0100"]
    assert event.user.first_name == "Jane"
    assert event.action_source == "website"
    assert event.event_source_url == "https://funnel.example.com/lvng"
    assert event.client_user_agent == "Mozilla/5.0 (fake)"
    assert event.attribution.ad_id == "120200000000000001"
    assert event.attribution.utm_source == "facebook"
    assert event.attribution.fbclid == "IwAR_FAKE"
    assert event.attribution.click_time == datetime(2026, 1, 28, 14, 30, tzinfo=UTC)
    assert event.attribution.landing_url == "https://funnel.example.com/lvng"


def test_redelivery_and_resubmission_share_the_event_id() -> None:
    payload = fixture_json("perspective", "documented")
    payload["meta"]["convertedAt"] = "2026-01-28T15:00:00Z"  # "Funnel completed" later
    again = parse_body(encode(payload))
    assert isinstance(again, ConversionEvent)
    assert again.event_id == parse_event("documented").event_id


def test_missing_time_falls_back_to_receipt() -> None:
    payload = fixture_json("perspective", "documented")
    payload["meta"] = {"converted": True}
    event = parse_body(encode(payload))
    assert isinstance(event, ConversionEvent) and event.event_time == RECEIVED_AT


def test_not_converted_is_ignored() -> None:
    result = parse_body(fixture_bytes("perspective", "not_converted"))
    assert result == Ignored("perspective contact has not converted")


def test_phone_only_contact_without_id() -> None:
    event = parse_body(encode({"funnelId": "fn_1", "values": {"phone": "+1 (555) 0100"}}))
    assert isinstance(event, ConversionEvent)
    digits = hashlib.sha256(b"15550100").hexdigest()[:32]
    assert event.source_event_id == f"fn_1:phone-{digits}:converted"


@pytest.mark.parametrize(
    ("payload", "status", "reason"),
    [
        ({"id": "c1", "profile": {"email": {"value": "a@example.com"}}}, 422, "missing funnelId"),
        ({"funnelId": "fn_1", "values": {"firstName": "Jane"}}, 422, "missing identity"),
        ({"funnelId": "fn_1", "id": "c1", "values": {"email": "e" * 513}}, 400, "user.emails"),
    ],
)
def test_payload_errors(payload: Any, status: int, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason) as info:
        parse_body(encode(payload))
    assert info.value.status_code == status
