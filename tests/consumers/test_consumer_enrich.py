"""Enrichment from the contact: a click seen again keeps its first-seen time."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from capi_stream.event import ConversionEvent
from consumers.pipeline.enrich import ContactHints, _valid_fbc, resolve_fbc
from consumers.pipeline.prepare import build_event_user_data
from meta_capi.fbc import fbc_from, is_valid_fbc
from meta_capi.validation import MetaEventValidationError

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FIRST = NOW - timedelta(hours=5)
TENANT = uuid.UUID("11111111-1111-1111-1111-111111111111")
CONTACT = uuid.UUID("22222222-2222-2222-2222-222222222222")
STORED = ContactHints(
    CONTACT,
    fbc=f"fb.1.{int(FIRST.timestamp() * 1000)}.IwAR_A",
    fbclid="IwAR_A",
    fbc_first_seen_at=FIRST,
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def event(**fields: Any) -> ConversionEvent:
    return ConversionEvent.create(
        tenant_id=TENANT,
        source="api",
        source_event_id="x",
        event_name="Lead",
        event_time=NOW,
        action_source="chat",
        contact_id=CONTACT,
        **fields,
    )


def test_the_same_fbclid_again_uses_the_first_seen_time() -> None:
    assert resolve_fbc(event(attribution={"fbclid": "IwAR_A"}), STORED) == STORED.fbc


def test_a_new_fbclid_is_built_with_its_own_time() -> None:
    fbc = resolve_fbc(event(attribution={"fbclid": "IwAR_B"}), STORED)
    assert fbc == f"fb.1.{int(NOW.timestamp() * 1000)}.IwAR_B"


def test_a_browser_fbc_wins_and_no_click_falls_back_to_the_contact() -> None:
    cookie = "fb.1.1700000000000.IwAR_A"
    assert resolve_fbc(event(attribution={"fbc": cookie}), STORED) == cookie
    assert resolve_fbc(event(), STORED) == STORED.fbc
    assert resolve_fbc(event(), None) is None


def test_external_id_is_the_internal_contact_id() -> None:
    user, _ = build_event_user_data(event(user={"external_ids": ["crm-1"]}), STORED, None)
    assert user["external_id"] == [sha("crm-1"), sha(str(CONTACT))]


def test_user_data_lists_every_filled_key_in_meta_order_and_drops_empties() -> None:
    user = {
        "emails": ["a@b.co"],
        "phones": ["+16505551212"],
        "first_name": "Ann",
        "last_name": "Lee",
        "gender": "f",
        "date_of_birth": "1990-01-02",
        "city": "Paris",
        "state": "Île-de-France",
        "zip": "75001",
        "country": "FR",
        "external_ids": ["crm-1"],
        "page_id": "p1",
        "page_scoped_user_id": "psid",
        "ig_account_id": "ig1",
        "ig_sid": "igsid",
        "whatsapp_business_account_id": "waba",
        "ctwa_clid": "ctwa",
        "lead_id": "lead",
    }
    full = event(
        user=user,
        client_ip_address="203.0.113.7",
        client_user_agent="UA",
        attribution={"fbp": "fb.1.1596403881668.1116446470"},
    )
    user_data, stored = build_event_user_data(full, STORED, None)
    assert list(user_data) == [
        "em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id",
        "client_ip_address", "client_user_agent", "fbc", "fbp", "ctwa_clid", "page_id",
        "page_scoped_user_id", "ig_account_id", "ig_sid", "whatsapp_business_account_id",
        "lead_id",
    ]  # fmt: skip
    assert user_data["external_id"] == [sha("crm-1"), sha(str(CONTACT))]
    assert stored == user_data and stored["em"] is not user_data["em"]  # the row's own lists
    sparse, _ = build_event_user_data(event(user={"emails": [], "city": "Paris"}), None, None)
    assert sparse == {"ct": sha("paris"), "external_id": [sha(str(CONTACT))]}


_CLICK_IDS = st.sampled_from(["fb.1.1700000000000.IwAR_A", "fb.1.17.x", "fb.", "IwAR-9_z", "a b"])


@given(value=_CLICK_IDS | st.text(alphabet="fb.1790IwAR_-x ", max_size=24))
def test_a_click_id_is_kept_exactly_when_fbc_from_makes_a_valid_fbc_of_it(value: str) -> None:
    try:
        built: str | None = fbc_from(value, int(FIRST.timestamp() * 1000))
    except MetaEventValidationError:
        built = None
    expected = built if built and is_valid_fbc(built) else None
    assert _valid_fbc(value, FIRST) == expected
