"""GoHighLevel -> AddToCart: native and workflow shapes, keys, booking time, ignores."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
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

GHL = ADAPTERS["ghl"]


def parse_body(body: bytes) -> ConversionEvent | Ignored:
    return GHL.parse(make_request(body))


def parse_event(name: str) -> ConversionEvent:
    result = parse_body(fixture_bytes("ghl", name))
    assert isinstance(result, ConversionEvent), result
    return result


def test_native_appointment_create() -> None:
    event = parse_event("appointment_create")
    assert event.event_name == "AddToCart"
    assert event.source_event_id == "appt_FAKE0001"
    assert event.delivery_id == "wh_FAKE0001"
    # dateAdded (14:34:58-05:00), never the future startTime (2026-02-03).
    assert event.event_time == datetime(2026, 1, 28, 19, 34, 58, tzinfo=UTC)
    assert event.action_source == "system_generated"
    assert event.source_ids.ghl_contact_id == "ghlc_FAKE0001"
    assert event.user.emails == [] and event.user.phones == []  # no PII in appointment events
    assert event.custom_data.value is None


def test_workflow_booking() -> None:
    event = parse_event("workflow_booked")
    assert event.source_event_id == "appt_FAKE0001"
    assert event.delivery_id is None
    assert event.event_time == datetime(2026, 1, 28, 19, 34, 58, tzinfo=UTC)
    assert event.user.emails == ["jane@example.com"]  # never customData.email (the host's)
    assert event.user.phones == ["+15550100"]
    assert (event.user.first_name, event.user.last_name) == ("Jane", "Doe")
    assert event.user.country == "US"
    assert event.source_ids.ghl_contact_id == "ghlc_FAKE0001"
    assert event.source_ids.mc_subscriber_id == "1234567890"
    assert event.action_source == "website"  # url + userAgent in attributionSource
    assert event.event_source_url == "https://example.com/book"
    assert event.client_user_agent == "Mozilla/5.0 (fake)"
    assert event.client_ip_address == "203.0.113.7"
    attribution = event.attribution
    assert attribution.ad_id == "120200000000000001"  # customData.AD_ID first
    assert attribution.fbclid == "IwAR_FAKE"
    assert attribution.utm_source == "facebook"  # first touch wins over lastAttributionSource
    assert attribution.utm_medium == "paid"  # ...which fills what first touch lacks
    assert attribution.utm_campaign == "spring"
    assert attribution.landing_url == "https://example.com/book"


def test_native_and_workflow_deliveries_of_one_booking_share_the_event_id() -> None:
    expected = build_event_id(TENANT_ID, "ghl", "appt_FAKE0001")
    assert parse_event("appointment_create").event_id == expected
    assert parse_event("workflow_booked").event_id == expected


def test_reschedule_update_keeps_the_key() -> None:
    payload = fixture_json("ghl", "appointment_create")
    payload.update(type="AppointmentUpdate", webhookId="wh_FAKE0009")
    payload["appointment"]["startTime"] = "2026-02-05T16:00:00-05:00"
    event = parse_body(encode(payload))
    assert isinstance(event, ConversionEvent)
    assert event.event_id == parse_event("appointment_create").event_id
    assert event.event_time == parse_event("appointment_create").event_time


def test_opportunity_without_appointment_keys_on_contact_and_opportunity() -> None:
    event = parse_event("workflow_opportunity")
    assert event.source_event_id == "ghlc_FAKE0002:opp_FAKE0002:booked"
    assert event.event_time == RECEIVED_AT  # no booking-creation time in the body
    assert event.action_source == "system_generated"
    assert (event.user.first_name, event.user.last_name) == ("Maria", "Lopez")
    assert event.custom_data.value == Decimal("250.00")
    assert event.custom_data.currency == "USD"


def test_monetary_value_without_currency_is_omitted() -> None:
    payload = fixture_json("ghl", "workflow_opportunity")
    del payload[0]["currency"]
    event = parse_body(encode(payload))
    assert isinstance(event, ConversionEvent)
    assert (event.custom_data.value, event.custom_data.currency) == (None, None)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("appointment_cancelled", "appointment cancelled"),
        ("appointment_delete", "ghl event AppointmentDelete is not a booking"),
        ("contact_update", "ghl event ContactUpdate is not a booking"),
        ("workflow_no_show", "pipeline stage 'No Show' is not a booking"),
        ("workflow_deposit", "pipeline stage 'Deposit Paid' is a payment"),
    ],
)
def test_ignored_fixtures(name: str, reason: str) -> None:
    result = parse_body(fixture_bytes("ghl", name))
    assert isinstance(result, Ignored)
    assert result.reason.startswith(reason)


@pytest.mark.parametrize("status", ["noshow", "no_show", "invalid", "Cancelled", "canceled"])
def test_ignored_appointment_statuses(status: str) -> None:
    payload = fixture_json("ghl", "appointment_create")
    payload["appointment"]["appointmentStatus"] = status
    assert isinstance(parse_body(encode(payload)), Ignored)


@pytest.mark.parametrize("status", ["new", "confirmed", "booked", "showed"])
def test_live_appointment_statuses(status: str) -> None:
    payload = fixture_json("ghl", "workflow_booked")
    payload["calendar"]["appoinmentStatus"] = status
    assert isinstance(parse_body(encode(payload)), ConversionEvent)


def test_unknown_native_event_type_is_ignored() -> None:
    payload = fixture_json("ghl", "appointment_create")
    payload["type"] = "InvoicePaid"
    assert parse_body(encode(payload)) == Ignored("ghl event InvoicePaid is not a booking")


def test_website_needs_both_url_and_user_agent() -> None:
    payload: dict[str, Any] = fixture_json("ghl", "workflow_booked")
    del payload["contact"]["attributionSource"]["userAgent"]
    event = parse_body(encode(payload))
    assert isinstance(event, ConversionEvent)
    assert event.action_source == "system_generated"
    assert event.event_source_url is None and event.client_user_agent is None


@pytest.mark.parametrize(
    ("payload", "status", "reason"),
    [
        ({"email": "jane@example.com"}, 422, "missing appointment id"),
        ({"contact_id": "c1"}, 422, "missing appointment id"),
        ({"calendar": {"appointmentId": "a1"}}, 422, "missing identity"),
        (
            {"calendar": {"appointmentId": "a1"}, "contact_id": "c", "email": "e" * 513},
            400,
            "emails",
        ),
    ],
)
def test_payload_errors(payload: Any, status: int, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason) as info:
        parse_body(encode(payload))
    assert info.value.status_code == status


def test_delivery_id() -> None:
    assert (
        GHL.delivery_id(make_request(fixture_bytes("ghl", "appointment_create"))) == "wh_FAKE0001"
    )
    assert GHL.delivery_id(make_request(fixture_bytes("ghl", "workflow_booked"))) is None
    assert GHL.delivery_id(make_request(b"\xff")) is None
