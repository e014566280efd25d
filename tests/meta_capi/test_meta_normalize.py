"""Normalisation and hashing of every user_data field, with Meta's documented digests."""

from __future__ import annotations

import hashlib
import random
import unicodedata
from datetime import date

import pytest

from meta_capi._birthdate import normalize_birthdate
from meta_capi.hashing import (
    hash_email,
    hash_field,
    hash_name,
    hash_phone,
    is_sha256_hex,
)
from meta_capi.normalize import normalize_field


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# Meta's documentation examples: input -> normalised -> full digest (prefix/suffix as in docs).
META_DOC_EXAMPLES = [
    (
        "em",
        "John_Smith@gmail.com",
        None,
        "john_smith@gmail.com",
        "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f",
    ),
    (
        "ph",
        "(650)555-1212",
        "US",
        "16505551212",
        "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176",
    ),
    (
        "fn",
        "Mary",
        None,
        "mary",
        "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec",
    ),
    ("fn", "정", None, "정", "8fa8cd9c440be61d0151429310034083132b35975c4bea67fdd74158eb51db14"),
    (
        "ln",
        "Valéry",
        None,
        "valéry",
        "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c",
    ),
    (
        "db",
        "2/16/1997",
        None,
        "19970216",
        "01acdbf6ec7b4f478a225f1a246e5d6767eeab1a7ffa17f025265b5b94f40f0c",
    ),
    (
        "country",
        "United States",
        None,
        "us",
        "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621",
    ),
]


@pytest.mark.parametrize(("key", "raw", "country", "normalized", "digest"), META_DOC_EXAMPLES)
def test_meta_doc_examples(
    key: str, raw: str, country: str | None, normalized: str, digest: str
) -> None:
    assert normalize_field(key, raw, default_country=country) == normalized
    assert hash_field(key, raw, default_country=country) == digest
    assert sha(normalized) == digest


@pytest.mark.parametrize(
    ("key", "raw", "country", "expected"),
    [
        # em: trim + lower-case; must look like an email
        ("em", "  Jane.Doe+tag@Example.COM ", None, "jane.doe+tag@example.com"),
        ("em", "josé@exämple.de", None, "josé@exämple.de"),
        ("em", "not-an-email", None, None),
        ("em", "jane doe@example.com", None, None),
        ("em", "jane@localhost", None, None),
        ("em", "   ", None, None),
        # ph: digits with country code
        ("ph", "+44 (0)20 7946 0958", None, "442079460958"),
        ("ph", "0044 20 7946 0958", "DE", "442079460958"),
        ("ph", "020 7946 0958", "GB", "442079460958"),
        ("ph", "020 7946 0958", "gb", "442079460958"),
        ("ph", "+1 (650) 555-1212 ext. 42", None, "16505551212"),
        ("ph", "16505551212", None, "16505551212"),
        ("ph", "442079460958", "US", "442079460958"),
        ("ph", "(650)555-1212", None, None),  # no country: refuse to guess (+65?)
        ("ph", "020 7946 0958", None, None),  # trunk 0 with no country
        ("ph", "+999 12", None, "99912"),  # unresolvable but '+': Meta's doc rule
        ("ph", "no phone", "US", None),
        ("ph", "", "US", None),
        # fn / ln: lower-case, no punctuation or spaces, any script
        ("fn", "O'Brien", None, "obrien"),
        ("fn", " Mary-Jane ", None, "maryjane"),
        ("ln", "Van der Berg", None, "vanderberg"),
        ("fn", "José", None, "josé"),
        ("fn", "...", None, None),
        # ge
        ("ge", "Male", None, "m"),
        ("ge", "Mr.", None, "m"),
        ("ge", "M", None, "m"),
        ("ge", "female", None, "f"),
        ("ge", "Mrs", None, "f"),
        ("ge", "she", None, "f"),
        ("ge", "non-binary", None, None),
        ("ge", "x", None, None),
        # db
        ("db", "1997-02-16", None, "19970216"),
        ("db", "1997-02-16T08:30:00Z", None, "19970216"),
        ("db", "16.02.1997", None, "19970216"),
        ("db", "16/02/1997", None, "19970216"),  # 16 cannot be a month: day first
        ("db", "02/03/1997", None, "19970203"),  # slash: US month first
        ("db", "02.03.1997", None, "19970302"),  # dot: day first
        ("db", "19970216", None, "19970216"),
        ("db", "02161997", None, "19970216"),
        ("db", "February 16, 1997", None, "19970216"),
        ("db", "16 Feb 1997", None, "19970216"),
        ("db", "16th Sept 1997", None, "19970916"),
        ("db", "2/16/97", None, None),  # two-digit year: ambiguous century
        ("db", "1899-12-31", None, None),
        ("db", "1997-02-30", None, None),
        ("db", "February 1997", None, None),
        ("db", "yesterday", None, None),
        # ct: letters only, accents kept
        ("ct", "New York", None, "newyork"),
        ("ct", "São Paulo", None, "sãopaulo"),
        ("ct", "St. John's", None, "stjohns"),
        ("ct", "München", None, "münchen"),
        ("ct", "-", None, None),
        # st: US names -> code; elsewhere letters only
        ("st", "California", None, "ca"),
        ("st", "CA", None, "ca"),
        ("st", "N.Y.", None, "ny"),
        ("st", "District of Columbia", "US", "dc"),
        ("st", "New South Wales", "AU", "newsouthwales"),
        ("st", "Washington", "AU", "washington"),
        ("st", "British Columbia", None, "britishcolumbia"),
        # zp
        ("zp", "94025-1234", None, "94025"),
        ("zp", "940251234", None, "94025"),
        ("zp", "940251234", "US", "94025"),
        ("zp", "M1 1AE", "GB", "m11ae"),
        ("zp", "SW1A 1AA", None, "sw1a1aa"),
        ("zp", "100-0001", "JP", "1000001"),
        ("zp", "940251234", "JP", "940251234"),
        # country: ISO alpha-2, lower-case
        ("country", "USA", None, "us"),
        ("country", "U.S.", None, "us"),
        ("country", "us", None, "us"),
        ("country", "UK", None, "gb"),
        ("country", "United Kingdom", None, "gb"),
        ("country", "Germany", None, "de"),
        ("country", "DEU", None, "de"),
        ("country", "Korea, Republic of", None, "kr"),
        ("country", "Narnia", None, None),
        # external_id: trim + lower-case
        ("external_id", "  CRM-00042 ", None, "crm-00042"),
        ("external_id", " ", None, None),
    ],
)
def test_normalize_field(key: str, raw: str, country: str | None, expected: str | None) -> None:
    assert normalize_field(key, raw, default_country=country) == expected


def test_unknown_key_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        normalize_field("client_ip_address", "1.2.3.4")
    with pytest.raises(KeyError):
        hash_field("email", "a" * 64)


def test_birthdate_year_cannot_be_after_today() -> None:
    assert normalize_birthdate("2030-01-01", today=date(2026, 11, 1)) is None
    assert normalize_birthdate("2026-10-31", today=date(2026, 11, 1)) == "20261031"


@pytest.mark.parametrize(("key", "text"), [("fn", "José"), ("ct", "São Paulo"), ("ln", "Valéry")])
def test_nfc_and_nfd_hash_alike(key: str, text: str) -> None:
    nfd = unicodedata.normalize("NFD", text)
    assert nfd != text
    assert hash_field(key, nfd) == hash_field(key, unicodedata.normalize("NFC", text))


def test_sha256_hex_passes_through_lowercased() -> None:
    digest = sha("john_smith@gmail.com")
    assert hash_field("em", digest.upper()) == digest
    assert hash_field("fn", f"  {digest} ") == digest


def test_32_hex_is_hashed_not_passed_through() -> None:
    md5_like = "0123456789abcdef0123456789abcdef"
    assert hash_field("external_id", md5_like) == sha(md5_like)
    assert hash_field("fn", md5_like) == sha(md5_like)


def test_63_hex_is_not_a_hash() -> None:
    assert not is_sha256_hex("a" * 63)
    assert hash_field("external_id", "a" * 63) == sha("a" * 63)


def test_convenience_helpers() -> None:
    assert hash_email(" John_Smith@gmail.com") == META_DOC_EXAMPLES[0][4]
    assert hash_phone("(650)555-1212", "US") == META_DOC_EXAMPLES[1][4]
    assert hash_phone("(650)555-1212") is None
    assert hash_name("MARY") == META_DOC_EXAMPLES[2][4]
    assert hash_email("nope") is None


def test_the_iso_date_shortcut_reads_dates_as_the_separated_reading_does() -> None:
    # ISO text takes a shortcut; 'yyyy/mm/dd' and 'yyyy.m.d' still go the general way.
    today = date(2026, 11, 1)
    rng = random.Random(5)
    for _ in range(3_000):
        year, month, day = rng.randrange(1890, 2040), rng.randrange(0, 14), rng.randrange(0, 33)
        iso = normalize_birthdate(f" {year:04d}-{month:02d}-{day:02d} ", today=today)
        assert iso == normalize_birthdate(f"{year:04d}/{month:02d}/{day:02d}", today=today)
        assert iso == normalize_birthdate(f"{year}.{month}.{day}", today=today)
