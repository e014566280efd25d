"""Stripe -> Purchase: conversions, collapse onto one key, money by exponent, ignores."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from capi_stream.event import ConversionEvent, build_event_id
from producers.adapters import ADAPTERS, Ignored, PayloadError, SignatureError
from producers.adapters.signatures import sign_stripe
from tests.fixtures.webhooks import (
    RECEIVED_AT,
    TENANT_ID,
    encode,
    fixture_bytes,
    fixture_json,
    make_request,
)

STRIPE = ADAPTERS["stripe"]
SECRET = "whsec_FAKE_test_secret_0001"


def parse(name: str) -> ConversionEvent | Ignored:
    return STRIPE.parse(make_request(fixture_bytes("stripe", name)))


def parse_event(name: str) -> ConversionEvent:
    result = parse(name)
    assert isinstance(result, ConversionEvent), result
    return result


@pytest.mark.parametrize(
    ("name", "key", "value", "currency", "action_source", "created"),
    [
        ("checkout_session_completed", "cs_test_0001", "150.00", "USD", "website", 1769611990),
        ("payment_intent_succeeded", "pi_TEST0001", "150.00", "USD", "other", 1769611987),
        ("charge_succeeded", "pi_TEST0001", "150.00", "USD", "other", 1769611988),
        (
            "checkout_session_async_payment_succeeded",
            "cs_test_0002",
            "150.00",
            "USD",
            "other",
            1769612990,
        ),
        ("invoice_paid", "in_TEST0001", "99.00", "USD", "system_generated", 1769611990),
        ("payment_intent_succeeded_jpy", "pi_TEST_JPY", "15000", "JPY", "other", 1769611990),
        ("payment_intent_succeeded_kwd", "pi_TEST_KWD", "12.345", "KWD", "other", 1769611990),
    ],
)
def test_conversions(
    name: str, key: str, value: str, currency: str, action_source: str, created: int
) -> None:
    event = parse_event(name)
    assert event.event_name == "Purchase"
    assert event.source == "stripe"
    assert event.source_event_id == key
    assert event.custom_data.order_id == key
    assert event.custom_data.value == Decimal(value)
    assert str(event.custom_data.value) == value  # exact scale: no float on the way
    assert event.custom_data.currency == currency
    assert event.action_source == action_source
    assert event.event_time == datetime.fromtimestamp(created, UTC)
    assert event.event_id == build_event_id(TENANT_ID, "stripe", key)
    assert event.delivery_id is not None and event.delivery_id.startswith("evt_")


def test_checkout_session_identity_and_metadata() -> None:
    event = parse_event("checkout_session_completed")
    assert event.user.emails == ["jane@example.com"]
    assert event.user.phones == ["+15550100"]
    assert (event.user.first_name, event.user.last_name) == ("Jane", "Doe")
    assert (event.user.city, event.user.zip, event.user.country) == (
        "San Francisco",
        "94107",
        "US",
    )
    assert event.source_ids.stripe_customer_id == "cus_TEST0001"
    assert event.source_ids.mc_subscriber_id == "1234567890"
    assert event.contact_id == uuid.UUID("7d2c4b1e-9a0f-4c3e-8b7a-1f2e3d4c5b6a")
    assert event.attribution.fbclid == "IwAR_FAKE"
    assert event.attribution.fbp == "fb.1.1769600000000.1234567890"
    assert event.event_source_url == "https://example.com/checkout"
    assert event.client_user_agent == "Mozilla/5.0 (fake)"
    assert event.client_ip_address == "203.0.113.7"


def test_invoice_identity() -> None:
    event = parse_event("invoice_paid")
    assert event.user.emails == ["sam@example.com"]
    assert event.user.phones == ["+447700900123"]
    assert (event.user.first_name, event.user.last_name) == ("Sam", "Example")
    assert event.user.country == "GB"
    assert event.source_ids.stripe_customer_id == "cus_TEST0002"


def test_one_payment_collapses_onto_one_event_id() -> None:
    names = ["payment_intent_succeeded", "charge_succeeded"]
    ids = {parse_event(name).event_id for name in names}
    assert ids == {build_event_id(TENANT_ID, "stripe", "pi_TEST0001")}


def test_one_checkout_session_collapses_onto_its_session_id() -> None:
    # The thank-you page receives only the session id: both session events carry it.
    completed = fixture_json("stripe", "checkout_session_completed")
    completed["type"], completed["id"] = "checkout.session.async_payment_succeeded", "evt_T9"
    alias = STRIPE.parse(make_request(encode(completed)))
    assert isinstance(alias, ConversionEvent)
    assert alias.event_id == parse_event("checkout_session_completed").event_id
    assert alias.event_id == build_event_id(TENANT_ID, "stripe", "cs_test_0001")


def test_redelivery_yields_the_same_event() -> None:
    assert parse_event("invoice_paid") == parse_event("invoice_paid")


def test_invoice_payment_succeeded_alias_collapses_with_invoice_paid() -> None:
    payload = fixture_json("stripe", "invoice_paid")
    payload["type"], payload["id"] = "invoice.payment_succeeded", "evt_TEST0099"
    alias = STRIPE.parse(make_request(encode(payload)))
    assert isinstance(alias, ConversionEvent)
    assert alias.event_id == parse_event("invoice_paid").event_id


def test_subscription_session_is_keyed_on_the_session_too() -> None:
    payload = fixture_json("stripe", "checkout_session_completed")
    payload["data"]["object"].update(payment_intent=None, invoice="in_TEST0042")
    result = STRIPE.parse(make_request(encode(payload)))
    assert isinstance(result, ConversionEvent) and result.source_event_id == "cs_test_0001"


def test_expanded_references_are_followed() -> None:
    payload = fixture_json("stripe", "payment_intent_succeeded")
    pi = payload["data"]["object"]
    pi["customer"] = {"id": "cus_TEST0001", "object": "customer"}
    pi["receipt_email"] = None
    pi["latest_charge"] = fixture_json("stripe", "charge_succeeded")["data"]["object"]
    event = STRIPE.parse(make_request(encode(payload)))
    assert isinstance(event, ConversionEvent)
    assert event.source_ids.stripe_customer_id == "cus_TEST0001"
    assert event.user.emails == ["jane@example.com"]
    assert event.user.first_name == "Jane"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("checkout_session_unpaid", "checkout session not paid"),
        ("payment_intent_payment_failed", "stripe payment_intent.payment_failed: payment failed"),
        ("charge_failed", "stripe charge.failed: payment failed"),
        ("customer_created", "stripe event customer.created is not a payment"),
    ],
)
def test_ignored(name: str, reason: str) -> None:
    assert parse(name) == Ignored(reason)


def test_zero_amount_invoice_is_ignored() -> None:
    payload = fixture_json("stripe", "invoice_paid")
    payload["data"]["object"]["amount_paid"] = 0
    assert STRIPE.parse(make_request(encode(payload))) == Ignored("zero-amount invoice")


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda o: o.pop("currency"), 400),
        (lambda o: o.update(amount_received="15000", amount="x"), 400),
        (lambda o: o.update(receipt_email=None, customer=None), 422),
    ],
)
def test_payload_errors(mutate: object, status: int) -> None:
    payload = fixture_json("stripe", "payment_intent_succeeded")
    mutate(payload["data"]["object"])  # type: ignore[operator]
    with pytest.raises(PayloadError) as info:
        STRIPE.parse(make_request(encode(payload)))
    assert info.value.status_code == status


def test_future_event_time_is_clamped_to_receipt() -> None:
    payload = fixture_json("stripe", "payment_intent_succeeded")
    payload["created"] = int((RECEIVED_AT + timedelta(hours=1)).timestamp())
    event = STRIPE.parse(make_request(encode(payload)))
    assert isinstance(event, ConversionEvent) and event.event_time == RECEIVED_AT


def test_delivery_id_is_the_event_id() -> None:
    request = make_request(fixture_bytes("stripe", "charge_succeeded"))
    assert STRIPE.delivery_id(request) == "evt_TEST0005"
    assert STRIPE.delivery_id(make_request(b"not json")) is None


def test_verify_accepts_a_signed_request_and_rejects_a_tampered_one() -> None:
    body = fixture_bytes("stripe", "payment_intent_succeeded")
    t = int(RECEIVED_AT.timestamp()) - 5
    header = {"Stripe-Signature": sign_stripe(body, SECRET, t)}
    STRIPE.verify(make_request(body, header), {"webhook_secret": SECRET})
    STRIPE.verify(make_request(body, header), {"webhook_secrets": ["whsec_new", SECRET]})
    with pytest.raises(SignatureError):
        STRIPE.verify(
            make_request(body.replace(b"15000", b"15001"), header), {"webhook_secret": SECRET}
        )
    with pytest.raises(SignatureError, match="no secret configured for stripe"):
        STRIPE.verify(make_request(body, header), None)
