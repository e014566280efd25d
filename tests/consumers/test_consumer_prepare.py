"""Pure pipeline steps: enrichment, hashing for forwarding, server event and row building."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from capi_stream.event import ConversionEvent
from consumers.pipeline.enrich import ContactHints, resolve_ad_id
from consumers.pipeline.prepare import build_event_user_data, prepare_event
from consumers.pipeline.redact import hash_identity
from meta_capi.validation import MetaEventValidationError
from storage.models import EventStatus

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TENANT = uuid.UUID("11111111-1111-1111-1111-111111111111")
CONTACT = uuid.UUID("22222222-2222-2222-2222-222222222222")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def event(**overrides: Any) -> ConversionEvent:
    fields: dict[str, Any] = {
        "event_name": "Purchase",
        "event_time": NOW - timedelta(minutes=1),
        "action_source": "other",
        "contact_id": CONTACT,
        "user": {
            "emails": ["A@B.co"],
            "phones": ["+1 650 555 1212"],
            "first_name": "Ann",
            "country": "US",
        },
        "attribution": {"fbp": "fb.1.1596403881668.1116446470"},
        "custom_data": {"value": Decimal("10.5"), "currency": "usd", "order_id": "o1"},
    }
    fields.update(overrides)
    return ConversionEvent.create(tenant_id=TENANT, source="api", source_event_id="x", **fields)


def test_the_contact_fills_gaps_and_the_event_wins() -> None:
    contact = ContactHints(
        CONTACT, fbc="fb.1.1700000000000.AbC", fbp="fb.1.1.2", ad_id="ad-1", ctwa_clid="c"
    )
    user, _ = build_event_user_data(event(), contact, "US")
    assert user["fbp"] == "fb.1.1596403881668.1116446470"  # the event's own value wins
    assert user["fbc"] == "fb.1.1700000000000.AbC"
    assert user["ctwa_clid"] == "c"
    assert user["external_id"] == [sha(str(CONTACT))]
    assert resolve_ad_id(event(), contact) == "ad-1"


def test_a_malformed_click_id_is_dropped_not_sent() -> None:
    user, _ = build_event_user_data(event(attribution={"fbc": "fb.1.notms.x"}), None, "US")
    assert "fbc" not in user


def test_a_bare_fbclid_becomes_an_fbc() -> None:
    user, _ = build_event_user_data(event(attribution={"fbclid": "IwAR2F4"}), None, "US")
    assert str(user["fbc"]).startswith("fb.1.") and str(user["fbc"]).endswith(".IwAR2F4")


def test_forwarded_events_hold_hashes_only_and_hashing_is_idempotent() -> None:
    original = event()
    hashed = hash_identity(original, "US")
    assert hashed.user.emails == [sha("a@b.co")]
    assert hashed.user.phones == [sha("16505551212")]
    assert hashed.user.first_name == sha("ann")
    assert hashed.user.country == sha("us")
    assert hashed.attribution == original.attribution  # fbc/fbp never hashed
    assert hash_identity(hashed, "US") == hashed


def test_prepare_builds_the_hashed_server_event_and_its_row() -> None:
    prepared = prepare_event(event(), None, default_country="US", now=NOW)
    assert prepared.status == EventStatus.PENDING
    assert prepared.server_event is not None
    user = prepared.server_event.user_data
    assert user["em"] == [sha("a@b.co")]
    assert prepared.row["user_data"] == dict(user)
    assert prepared.row["user_email_hash"] == sha("a@b.co")
    assert prepared.row["user_external_id"] == sha(str(CONTACT))
    assert prepared.row["custom_data"] == {"value": 10.5, "currency": "USD", "order_id": "o1"}


def test_an_event_older_than_seven_days_is_expired_not_sent() -> None:
    old = event(event_time=NOW - timedelta(days=8))
    prepared = prepare_event(old, None, default_country="US", now=NOW)
    assert (prepared.status, prepared.server_event) == (EventStatus.EXPIRED, None)


def test_an_invalid_event_is_dead_with_meta_subcode() -> None:
    prepared = prepare_event(event(custom_data={}), None, default_country=None, now=NOW)
    assert prepared.status == EventStatus.DEAD
    assert isinstance(prepared.error, MetaEventValidationError)
    assert prepared.error.subcode == 2804009
    assert prepared.row["user_email_hash"] == sha("a@b.co")  # the dead row still holds hashes


def test_money_that_a_json_number_cannot_carry_exactly_is_dead_not_rounded() -> None:
    custom = {"value": Decimal("1234567890123456.1234"), "currency": "usd"}
    prepared = prepare_event(event(custom_data=custom), None, default_country="US", now=NOW)
    assert prepared.status == EventStatus.DEAD
    assert prepared.server_event is None
    assert prepared.error is not None and "precision" in str(prepared.error)
    exact = prepare_event(
        event(custom_data={"value": Decimal("19.99"), "currency": "usd"}),
        None,
        default_country="US",
        now=NOW,
    )
    assert exact.status == EventStatus.PENDING
    assert exact.server_event is not None
    assert exact.server_event.to_payload()["custom_data"] == {"value": 19.99, "currency": "USD"}


def test_the_row_keeps_first_values_its_own_lists_and_standard_fields_over_extras() -> None:
    custom = {"value": Decimal("5"), "currency": "usd", "extra": {"value": "x", "tier": "gold"}}
    two = event(
        user={"emails": ["a@b.co", "c@d.co"], "phones": [], "last_name": "Lee"},
        custom_data=custom,
    )
    prepared = prepare_event(two, None, default_country="US", now=NOW)
    assert prepared.server_event is not None
    user = prepared.server_event.user_data
    row = prepared.row
    assert row["user_email_hash"] == sha("a@b.co")
    assert row["user_phone_hash"] is None and row["user_first_name_hash"] is None
    assert row["user_last_name_hash"] == sha("lee") == user["ln"]
    assert row["user_data"] == user and row["user_data"]["em"] is not user["em"]
    hash_columns = [key for key in row if key.startswith("user_") and key != "user_data"]
    assert hash_columns == [key for key in row if key.startswith("user_")][1:]  # one block
    assert len(hash_columns) == 13
    assert prepared.server_event.custom_data == {
        "value": Decimal("5"),
        "tier": "gold",
        "currency": "USD",
    }
    assert list(row["custom_data"]) == ["value", "tier", "currency"]
    assert row["custom_data"]["value"] == 5
