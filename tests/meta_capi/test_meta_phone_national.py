"""The national-number fast path gives what ``phonenumbers`` parsing gives, in every region."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType

from meta_capi import _phone
from meta_capi._phone import normalize_phone


def parsed(text: str, region: str | None, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """``normalize_phone`` with both fast paths switched off: always ``phonenumbers``."""
    with monkeypatch.context() as patch:
        patch.setattr(_phone, "_e164_digits", lambda _text: None)
        patch.setattr(_phone, "_national_digits", lambda _text, _digits, _region: None)
        return normalize_phone(text, region)


def variants(region: str, rng: random.Random) -> list[str]:
    """Example numbers of every type, formatted, prefixed, cut, extended; random digits."""
    metadata = PhoneMetadata.metadata_for_region(region, None)
    assert metadata is not None
    out = []
    for kind in PhoneNumberType.values():
        example = phonenumbers.example_number_for_type(region, kind)
        if example is None:
            continue
        nsn = phonenumbers.national_significant_number(example)
        code = str(example.country_code)
        prefix = metadata.national_prefix or "0"
        out += [
            phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL),
            phonenumbers.format_number(example, PhoneNumberFormat.INTERNATIONAL),
            nsn,
            prefix + nsn,
            f"({prefix}) {nsn}",
            nsn[:-1],
            nsn[:-2],
            nsn + str(rng.randrange(10)),
            code + nsn,
            code + prefix + nsn,
            f"{nsn[:3]}-{nsn[3:6]}.{nsn[6:]}",
        ]
    for _ in range(30):
        size = rng.randint(2, 18)
        out.append("".join(rng.choice("0123456789") for _ in range(size)))
        out.append(rng.choice(("0", "1", prefix)) + out[-1][1:])
    return out


def test_national_fast_path_matches_phonenumbers_in_every_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(13)
    taken = total = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for text in variants(region, rng):
            digits = "".join(ch for ch in text if ch.isdigit())
            international = _phone._INTERNATIONAL_PREFIX.match(text) is not None
            fast = None if international else _phone._national_digits(text, digits, region)
            expected = parsed(text, region, monkeypatch)
            if fast is not None:
                taken += 1
                assert fast == expected, (text, region)
            total += 1
            for context in (region, "US"):
                assert normalize_phone(text, context) == parsed(text, context, monkeypatch), (
                    text,
                    context,
                )
    assert taken > total // 8  # the fast path is really exercised (most random text is invalid)


@pytest.mark.parametrize(
    ("text", "region", "fast"),
    [
        ("(415) 555-0123", "US", "14155550123"),
        ("020 7946 0958", "GB", "442079460958"),
        ("(11) 91234-5678", "BR", "5511912345678"),
        ("01 42 68 53 00", "FR", "33142685300"),
        ("1 415 555 0123", "US", None),  # starts with the calling code: parsed
        ("011 44 20 7946 0958", "US", None),  # the US international prefix: parsed
        ("650 000-1234", "US", "16500001234"),  # invalid but possible: the tenant's country
        ("44 20 7946 0958", "US", "442079460958"),  # invalid in the US, valid with its code
        ("650 000-123", "US", None),  # no phone: the parsing path says so
        ("1-800-FLOWERS", "US", None),  # letters: parsed
        ("415 555 0123 ext 7", "US", None),
        ("415 555 0123", "ZZ", None),
        ("415 555 0123", None, None),
    ],
)
def test_national_fast_path_cases(
    text: str, region: str | None, fast: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    digits = "".join(ch for ch in text if ch.isdigit())
    assert _phone._national_digits(text, digits, region) == fast
    assert normalize_phone(text, region) == parsed(text, region, monkeypatch)


@settings(max_examples=3000, deadline=None)
@given(
    text=st.text(alphabet="0123456789 ()-.+", min_size=1, max_size=20),
    region=st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)),
)
def test_any_digits_and_punctuation_read_alike_on_both_paths(text: str, region: str) -> None:
    with pytest.MonkeyPatch.context() as patch:
        assert normalize_phone(text, region) == parsed(text, region, patch), (text, region)
