"""ManyChat -> Lead: body shapes, custom fields, identity, ignores, deterministic ids."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from capi_stream.event import ConversionEvent, build_event_id
from producers.adapters import ADAPTERS, Ignored, PayloadError
from producers.adapters.chatbot import custom_field_map
from tests.fixtures.webhooks import RECEIVED_AT, TENANT_ID, encode, fixture_bytes, make_request

CHATBOT = ADAPTERS["chatbot"]


def parse_body(body: bytes) -> ConversionEvent | Ignored:
    return CHATBOT.parse(make_request(body))


def parse_event(name: str) -> ConversionEvent:
    result = parse_body(fixture_bytes("chatbot", name))
    assert isinstance(result, ConversionEvent), result
    return result


@pytest.mark.parametrize(
    ("name", "subscriber", "event_time", "emails", "phones", "names", "ad_id"),
    [
        (
            "flat",
            "1234567890",
            RECEIVED_AT,  # no time in a hand-built body
            ["jane@example.com"],
            ["+15550100"],
            ("Jane", "Doe"),
            "120200000000000001",
        ),
        (
            "subscriber",
            "1234567891",
            datetime(2026, 1, 28, 19, 58, 41, tzinfo=UTC),
            [],
            ["+15550101"],  # whatsapp_phone; the envelope's null phone is skipped
            ("Maria", "Lopez"),
            "120200000000000002",
        ),
        (
            "subscriber_api_array",
            "1234567892",
            datetime(2026, 1, 28, 19, 0, tzinfo=UTC),
            ["sam@example.com"],
            ["+447700900123"],
            ("Sam", "Example"),  # last name from "name" when last_name is null
            "120200000000000003",  # ADID from the API's array of custom fields
        ),
    ],
)
def test_lead(
    name: str,
    subscriber: str,
    event_time: datetime,
    emails: list[str],
    phones: list[str],
    names: tuple[str, str],
    ad_id: str,
) -> None:
    event = parse_event(name)
    assert event.event_name == "Lead"
    assert event.action_source == "chat"
    assert event.source_event_id == f"{subscriber}:qualified"
    assert event.event_id == build_event_id(TENANT_ID, "chatbot", f"{subscriber}:qualified")
    assert event.event_time == event_time
    assert event.user.emails == emails
    assert event.user.phones == phones
    assert (event.user.first_name, event.user.last_name) == names
    assert event.source_ids.mc_subscriber_id == subscriber
    assert event.attribution.ad_id == ad_id
    assert event.custom_data.value is None


def test_flat_body_keeps_gender_and_ctwa_clid_from_custom_fields() -> None:
    assert parse_event("flat").user.gender == "female"
    assert parse_event("subscriber_api_array").user.ctwa_clid == "ARAkLkA_FAKE"


def test_redelivery_and_requalification_yield_the_same_event_id() -> None:
    first = parse_event("flat")
    again = parse_body(fixture_bytes("chatbot", "flat").replace(b"exhausted", b"tired"))
    assert isinstance(again, ConversionEvent)
    assert again.event_id == first.event_id


@pytest.mark.parametrize("event_type", ["contact_created", "link_sent", "link_clicked"])
def test_non_qualification_event_types_are_ignored(event_type: str) -> None:
    result = parse_body(encode({"subscriber_id": "1", "event_type": event_type}))
    assert result == Ignored(f"manychat event_type {event_type!r} is not a qualification")


def test_link_clicked_fixture_is_ignored() -> None:
    assert isinstance(parse_body(fixture_bytes("chatbot", "link_clicked")), Ignored)


def test_subscriber_id_only_is_enough_identity() -> None:
    event = parse_body(encode({"subscriber_id": 42, "event_type": "dm_qualified"}))
    assert isinstance(event, ConversionEvent)
    assert event.source_event_id == "42:qualified"
    assert event.user.emails == []


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"{", 400, "malformed JSON body"),
        (b"", 400, "malformed JSON body"),
        (b"[1, 2]", 400, "body must be a JSON object"),
        (b'"text"', 400, "body must be a JSON object"),
        (b"[]", 400, "body must be a JSON object"),
        (b'{"email": "jane@example.com"}', 422, "missing subscriber_id"),
        (b'{"subscriber": {"id": true}}', 422, "missing subscriber_id"),
        (encode({"subscriber_id": "1", "first_name": "x" * 600}), 400, "user.first_name"),
    ],
)
def test_payload_errors(body: bytes, status: int, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason) as info:
        parse_body(body)
    assert info.value.status_code == status
    assert "x" * 50 not in info.value.reason  # values never leak into the reason


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"AD_ID": "1"}, {"AD_ID": "1"}),
        ([{"name": "AD_ID", "value": "1"}, {"name": "AD_ID", "value": "2"}], {"AD_ID": "1"}),
        ([{"value": "orphan"}, "junk", {"name": "x", "value": None}], {"x": None}),
        ("junk", {}),
        (None, {}),
    ],
)
def test_custom_field_map(raw: Any, expected: dict[str, Any]) -> None:
    assert custom_field_map(raw) == expected
