"""The one-pass shortcuts give what the full paths give: E.164 phones, orjson bodies, hashes."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import phonenumbers
import pytest

from capi_stream.errors import EventValidationError
from meta_capi import _phone, hashing
from meta_capi._phone import normalize_phone
from meta_capi.client import _serialize
from meta_capi.hashing import build_user_data, hash_field
from meta_capi.server_event import ServerEvent, _finite_json_number, to_json_number
from meta_capi.validation import MetaEventValidationError, validate_server_event

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


def parsed(text: str, region: str | None, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """``normalize_phone`` with the fast path switched off: always ``phonenumbers``."""
    with monkeypatch.context() as patch:
        patch.setattr(_phone, "_e164_digits", lambda _text: None)
        return normalize_phone(text, region)


def random_e164(rng: random.Random) -> str:
    code = rng.choice(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE))
    national = "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 14)))
    return f"+{code}{national}"


def test_e164_fast_path_matches_phonenumbers_on_every_country_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(13)
    taken = 0
    for _ in range(4000):
        text = random_e164(rng)
        taken += _phone._e164_digits(text) is not None
        for region in (None, "US", "GB"):
            assert normalize_phone(text, region) == parsed(text, region, monkeypatch), text
    assert taken > 2000  # most E.164 text skips parsing


@pytest.mark.parametrize(
    ("text", "fast"),
    [
        ("+16505551212", "16505551212"),
        ("+442079460958", "442079460958"),
        ("+4402079460958", None),  # a trunk 0 phonenumbers strips: parsed
        ("+5511912345678", "5511912345678"),
        ("+1 650 555 1212", None),  # not E.164 text: parsed
        ("+0123456789", None),
        ("16505551212", None),
    ],
)
def test_e164_fast_path_cases(text: str, fast: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _phone._e164_digits(text) == fast
    assert normalize_phone(text, "US") == parsed(text, "US", monkeypatch)


def server_event(**custom: Any) -> ServerEvent:
    return ServerEvent(
        event_name="Purchase",
        event_time=int(NOW.timestamp()),
        action_source="website",
        event_id="e-ü-1",
        event_source_url="https://shop.example.com/ü",
        user_data={"em": ["a" * 64], "client_user_agent": "Mozilla/5.0 ✓"},
        custom_data={"value": Decimal("12.34"), "currency": "USD", **custom},
    )


@pytest.mark.parametrize(
    "custom",
    [{}, {"big": 10**30}, {"ratio": 1e16}, {"none": None}, {"text": 'a\u2028b\x01"\\'}],
)
def test_orjson_bodies_read_back_as_the_standard_librarys(custom: dict[str, Any]) -> None:
    event = server_event(**custom)
    expected = json.dumps(event.to_payload(), separators=(",", ":"), ensure_ascii=False)
    assert json.loads(_serialize(event)) == json.loads(expected)


def test_non_finite_numbers_stay_unserializable() -> None:
    with pytest.raises(ValueError):
        _serialize(server_event(score=float("nan")))
    with pytest.raises(ValueError):
        _serialize({"event_name": "Lead", "custom_data": {"x": float("inf")}})


def test_user_data_built_here_is_checked_only_for_enough_information() -> None:
    def lead(user_data: dict[str, Any]) -> ServerEvent:
        return ServerEvent(
            event_name="Lead",
            event_time=int(NOW.timestamp()),
            action_source="system_generated",
            event_id="e1",
            user_data=user_data,
        )

    with pytest.raises(MetaEventValidationError, match="SHA-256"):
        validate_server_event(lead({"em": ["not-a-hash"]}), now=NOW)
    # build_user_data makes only known keys, plain non-empty values and its own digests
    validate_server_event(lead({"em": ["not-a-hash"]}), now=NOW, hashed_here=True)
    with pytest.raises(MetaEventValidationError, match="not enough customer information"):
        validate_server_event(lead({"ge": "a" * 64, "fn": "b" * 64}), now=NOW, hashed_here=True)


def test_the_contact_step_and_user_data_hash_each_value_once() -> None:
    email, phone = "Ann@Example.com", "(650) 253-0000"
    hashing._hash.cache_clear()
    contact = (
        hash_field("em", email, default_country="US"),
        hash_field("ph", phone, default_country="US"),
    )
    before = hashing._hash.cache_info()
    # The record's own country (spelt otherwise) wins over the tenant's: the same context.
    user = build_user_data({"em": [email], "ph": [phone], "country": "us"}, default_country="GB")
    after = hashing._hash.cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (2, 1)  # 1: country
    assert (user["em"], user["ph"]) == ([contact[0]], [contact[1]])
    assert hash_field("st", "California", default_country=" US ") == hash_field("st", "ca")
    assert hash_field("st", "California", default_country=" ") != hash_field("st", "ca")


def test_cached_money_conversion_gives_what_the_conversion_gives() -> None:
    rng = random.Random(7)
    amounts = [
        "5",
        "5.00",
        "5.0000",
        "149.90",
        "149.9",
        "0",
        "0.00",
        "1e3",
        "1234567890123456.1234",
    ]
    amounts += [f"{rng.randrange(10**9)}.{rng.randrange(10**4):04d}" for _ in range(2_000)]
    for text in amounts * 2:  # the second round reads the cache
        value = Decimal(text)
        try:
            expected: object = _finite_json_number.__wrapped__(value)
        except EventValidationError as exc:
            expected = str(exc)
        try:
            got: object = to_json_number(value)
        except EventValidationError as exc:
            got = str(exc)
        assert (got, type(got)) == (expected, type(expected)), text
    for special in ("NaN", "sNaN", "Infinity"):  # refused before the cache (sNaN is unhashable)
        with pytest.raises(EventValidationError):
            to_json_number(Decimal(special))
