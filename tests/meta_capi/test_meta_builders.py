"""Event builders: defaults, payload shape and every validation error they raise."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from meta_capi.builders import (
    create_add_to_cart_event,
    create_event,
    create_initiate_checkout_event,
    create_lead_event,
    create_purchase_event,
)
from meta_capi.validation import MetaEventValidationError

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
UA = "Mozilla/5.0 (X11; Linux x86_64)"
URL = "https://shop.example.com/checkout"
USER = {"em": "John_Smith@gmail.com", "ph": "(650)555-1212"}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_purchase_payload_is_exactly_metas_shape() -> None:
    event = create_purchase_event(
        user_data={**USER, "client_user_agent": UA, "client_ip_address": "203.0.113.9"},
        event_id="ord-1",
        value=Decimal("142.52"),
        currency="eur",
        event_time=NOW - timedelta(hours=1),
        event_source_url=URL,
        order_id="1001",
        default_country="US",
        now=NOW,
    )
    payload = event.to_payload()
    assert payload == {
        "event_name": "Purchase",
        "event_time": int((NOW - timedelta(hours=1)).timestamp()),
        "action_source": "website",
        "event_id": "ord-1",
        "event_source_url": URL,
        "user_data": {
            "em": [sha("john_smith@gmail.com")],
            "ph": [sha("16505551212")],
            "client_user_agent": UA,
            "client_ip_address": "203.0.113.9",
        },
        "custom_data": {"order_id": "1001", "value": 142.52, "currency": "EUR"},
    }
    assert '"value": 142.52' in json.dumps(payload)
    assert event.custom_data["value"] == Decimal("142.52")


@pytest.mark.parametrize(
    ("builder", "name"),
    [
        (create_lead_event, "Lead"),
        (create_add_to_cart_event, "AddToCart"),
        (create_initiate_checkout_event, "InitiateCheckout"),
    ],
)
def test_builders_default_to_other_without_web_context(builder: Any, name: str) -> None:
    event = builder(user_data=USER, event_id="e1", default_country="US", now=NOW)
    assert event.event_name == name
    assert event.action_source == "other"
    assert event.event_time == int(NOW.timestamp())
    assert "custom_data" not in event.to_payload()


def test_url_without_user_agent_is_not_website() -> None:
    event = create_lead_event(user_data=USER, event_id="e1", event_source_url=URL, now=NOW)
    assert event.action_source == "other"


def test_int_event_time_and_extras() -> None:
    event = create_initiate_checkout_event(
        user_data=USER,
        event_id="e1",
        event_time=int(NOW.timestamp()) - 60,
        value=10,
        currency="usd",
        content_ids=["sku-1"],
        num_items=2,
        custom_data={"content_type": "product"},
        now=NOW,
    )
    assert event.to_payload()["custom_data"] == {
        "content_ids": ["sku-1"],
        "num_items": 2,
        "value": 10,
        "currency": "USD",
        "content_type": "product",
    }


def test_whatsapp_business_messaging_purchase() -> None:
    event = create_purchase_event(
        user_data={**USER, "whatsapp_business_account_id": "1234", "ctwa_clid": "ARAkLk"},
        event_id="e1",
        value="99.90",
        currency="BRL",
        messaging_channel="whatsapp",
        now=NOW,
    )
    payload = event.to_payload()
    assert payload["action_source"] == "business_messaging"
    assert payload["messaging_channel"] == "whatsapp"
    assert payload["custom_data"] == {"value": 99.9, "currency": "BRL"}


def test_lead_submitted_via_create_event_on_instagram() -> None:
    event = create_event(
        "LeadSubmitted",
        user_data={"ig_account_id": "17841400000", "ig_sid": "5432"},
        event_id="e1",
        messaging_channel="instagram",
        now=NOW,
    )
    assert event.action_source == "business_messaging"


BAD_BUILDS: list[tuple[str, dict[str, Any], str, int | None]] = [
    (
        "website without url",
        {"action_source": "website", "user_data": {**USER, "client_user_agent": UA}},
        "event_source_url",
        2804019,
    ),
    (
        "website without UA",
        {"action_source": "website", "event_source_url": URL},
        "user_data.client_user_agent",
        2804019,
    ),
    ("too old", {"event_time": NOW - timedelta(days=7, seconds=1)}, "event_time", 2804003),
    ("future", {"event_time": NOW + timedelta(minutes=2)}, "event_time", None),
    ("naive time", {"event_time": datetime(2026, 11, 10, 11)}, "event_time", None),
    ("ms not s", {"event_time": int(NOW.timestamp()) * 1000}, "event_time", None),
    ("no customer info", {"user_data": {}}, "user_data", 2804050),
    (
        "geo + UA only",
        {"user_data": {"ct": "Paris", "country": "FR", "zp": "75001", "client_user_agent": UA}},
        "user_data",
        2804050,
    ),
    ("db + UA", {"user_data": {"db": "1997-02-16", "client_user_agent": UA}}, "user_data", 2804050),
    ("fn + ge", {"user_data": {"fn": "Mary", "ge": "f"}}, "user_data", 2804050),
    ("ln + ge", {"user_data": {"ln": "Smith", "ge": "m"}}, "user_data", 2804050),
    ("unusable email only", {"user_data": {"em": "nope"}}, "user_data", 2804050),
    ("unknown user key", {"user_data": {"email": "a@b.co"}}, "user_data.email", 2804019),
    ("value without currency", {"value": 5}, "custom_data.currency", None),
    ("unknown currency", {"value": 5, "currency": "XYZ"}, "custom_data.currency", None),
    ("negative value", {"value": -1, "currency": "USD"}, "custom_data.value", None),
    ("float value", {"value": 1.5, "currency": "USD"}, "custom_data.value", None),
    ("junk value", {"value": "ten", "currency": "USD"}, "custom_data.value", None),
    ("empty event id", {"event_id": " "}, "event_id", None),
    (
        "extras repeat value",
        {"value": 1, "currency": "USD", "custom_data": {"value": 2}},
        "custom_data.value",
        None,
    ),
    ("app without app_data", {"action_source": "app"}, "app_data", None),
    ("unknown source", {"action_source": "fax"}, "action_source", None),
    ("messaging without channel", {"action_source": "business_messaging"}, "event_name", 2804066),
]


@pytest.mark.parametrize(
    ("overrides", "field", "subcode"),
    [pytest.param(o, f, s, id=i) for i, o, f, s in BAD_BUILDS],
)
def test_add_to_cart_validation_errors(
    overrides: dict[str, Any], field: str, subcode: int | None
) -> None:
    kwargs: dict[str, Any] = {"user_data": USER, "event_id": "e1", "now": NOW, **overrides}
    with pytest.raises(MetaEventValidationError) as info:
        create_lead_event(**kwargs)
    assert info.value.field == field
    assert info.value.subcode == subcode


MESSAGING_ERRORS: list[tuple[str, dict[str, Any], str, int | None]] = [
    ("no channel", {}, "messaging_channel", 2804019),
    (
        "whatsapp without ctwa_clid",
        {
            "messaging_channel": "whatsapp",
            "user_data": {**USER, "whatsapp_business_account_id": "1"},
        },
        "user_data.ctwa_clid",
        2804019,
    ),
    (
        "messenger without page_id",
        {"messaging_channel": "messenger", "user_data": {**USER, "page_scoped_user_id": "9"}},
        "user_data.page_id",
        2804019,
    ),
    (
        "messenger without PSID",
        {"messaging_channel": "messenger", "user_data": {**USER, "page_id": "9"}},
        "user_data.page_scoped_user_id",
        2804019,
    ),
    (
        "instagram without account",
        {"messaging_channel": "instagram", "user_data": {**USER, "ig_sid": "9"}},
        "user_data.instagram_business_account_id",
        2804019,
    ),
]


@pytest.mark.parametrize(
    ("overrides", "field", "subcode"),
    [pytest.param(o, f, s, id=i) for i, o, f, s in MESSAGING_ERRORS],
)
def test_business_messaging_errors(
    overrides: dict[str, Any], field: str, subcode: int | None
) -> None:
    kwargs: dict[str, Any] = {
        "user_data": USER,
        "event_id": "e1",
        "value": "1",
        "currency": "USD",
        "action_source": "business_messaging",
        "now": NOW,
        **overrides,
    }
    with pytest.raises(MetaEventValidationError) as info:
        create_purchase_event(**kwargs)
    assert info.value.field == field
    assert info.value.subcode == subcode


def test_lead_is_not_a_business_messaging_event() -> None:
    with pytest.raises(MetaEventValidationError) as info:
        create_lead_event(
            user_data={**USER, "whatsapp_business_account_id": "1", "ctwa_clid": "c"},
            event_id="e1",
            messaging_channel="whatsapp",
            now=NOW,
        )
    assert info.value.subcode == 2804066
    assert "LeadSubmitted" in str(info.value)


def test_purchase_requires_value_and_currency_arguments() -> None:
    kwargs: dict[str, Any] = {"user_data": USER, "event_id": "e1", "value": 1, "now": NOW}
    with pytest.raises(TypeError, match="currency"):
        create_purchase_event(**kwargs)


def test_event_at_the_edges_of_the_window_is_accepted() -> None:
    for when in (NOW - timedelta(days=7), NOW + timedelta(minutes=1)):
        assert create_lead_event(user_data=USER, event_id="e", event_time=when, now=NOW)
