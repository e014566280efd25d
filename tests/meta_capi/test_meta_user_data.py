"""build_user_data: hashing, pass-through, lists, unknown keys."""

from __future__ import annotations

import hashlib

import pytest

from capi_stream.errors import EventValidationError
from meta_capi.hashing import build_user_data


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_hashes_hashed_keys_and_passes_never_hash_keys() -> None:
    raw = {
        "em": "John_Smith@gmail.com",
        "ph": "(650)555-1212",
        "fn": "Mary",
        "country": "United States",
        "external_id": "CRM-1",
        "client_ip_address": "2001:db8::1",
        "client_user_agent": "Mozilla/5.0 (X11)",
        "fbc": "fb.1.1554763741205.IwAR2F4-dbP0l7",
        "fbp": "fb.1.1554763741205.123456",
        "madid": "AbCd-1234",
        "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO",
    }
    user = build_user_data(raw, default_country="US")
    assert user == {
        "em": [sha("john_smith@gmail.com")],
        "ph": [sha("16505551212")],
        "fn": sha("mary"),
        "country": sha("us"),
        "external_id": [sha("crm-1")],
        "client_ip_address": "2001:db8::1",
        "client_user_agent": "Mozilla/5.0 (X11)",
        "fbc": "fb.1.1554763741205.IwAR2F4-dbP0l7",
        "fbp": "fb.1.1554763741205.123456",
        "madid": "AbCd-1234",
        "ctwa_clid": raw["ctwa_clid"],
    }


def test_lists_are_deduplicated_in_order() -> None:
    user = build_user_data(
        {"em": ["B@x.com", "a@x.com", " b@X.com", "bad"], "external_id": ("2", "1", "2")}
    )
    assert user["em"] == [sha("b@x.com"), sha("a@x.com")]
    assert user["external_id"] == [sha("2"), sha("1")]


def test_single_string_for_list_key_becomes_list() -> None:
    assert build_user_data({"external_id": "42"}) == {"external_id": [sha("42")]}


def test_drops_none_empty_and_unusable() -> None:
    user = build_user_data(
        {"em": None, "ph": "", "fn": "  ", "ge": "unknown", "fbp": " ", "ln": "Smith"}
    )
    assert user == {"ln": sha("smith")}


def test_record_country_wins_over_default_for_phone_and_zip() -> None:
    user = build_user_data(
        {"ph": "020 7946 0958", "zp": "940251234", "country": "UK"}, default_country="US"
    )
    assert user["ph"] == [sha("442079460958")]
    assert user["zp"] == sha("940251234")  # not a US ZIP+4 in the UK


def test_already_hashed_values_pass_through() -> None:
    digest = sha("john_smith@gmail.com")
    assert build_user_data({"em": digest.upper(), "country": sha("us")}) == {
        "em": [digest],
        "country": sha("us"),
    }


def test_fbc_case_is_kept() -> None:
    assert build_user_data({"fbc": "fb.1.1554763741205.AbC"})["fbc"] == "fb.1.1554763741205.AbC"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"email": "a@b.co"}, "user_data.email"),
        ({"em": "a@b.co", "phone": "1"}, "user_data.phone"),
        ({"fn": ["Mary", "Jane"]}, "user_data.fn"),
        ({"fbp": ["fb.1.1.1"]}, "user_data.fbp"),
    ],
)
def test_rejects_unknown_keys_and_misplaced_lists(raw: dict[str, object], field: str) -> None:
    with pytest.raises(EventValidationError) as info:
        build_user_data(raw)  # type: ignore[arg-type]
    assert info.value.field == field
