"""City, state, postcode and country normalisation (reference §3)."""

from __future__ import annotations

import re
from functools import cache

import pycountry

from meta_capi._text import fold, letters_only, strip_punctuation_and_spaces

# Names pycountry does not resolve but people write. 'UK' is not ISO (GB is); Meta's param
# builder sends 'uk', which the documented alpha-2 rule makes wrong.
_COUNTRY_ALIASES: dict[str, str] = {
    "uk": "gb",
    "britain": "gb",
    "greatbritain": "gb",
    "england": "gb",
    "scotland": "gb",
    "wales": "gb",
    "northernireland": "gb",
    "russia": "ru",
    "turkey": "tr",
    "holland": "nl",
}
_SPACE = re.compile(r"\s")
_US_ZIP = re.compile(r"\d{5}(?:-?\d{4})?")


def normalize_city(value: str) -> str | None:
    """Lower-case letters only: 'New York' -> 'newyork', 'São Paulo' -> 'sãopaulo'.

    Accented and non-Roman letters are kept as the doc allows UTF-8 (the param builder drops
    them, which contradicts the doc).
    """
    return letters_only(fold(value)) or None


@cache
def _us_states() -> dict[str, str]:
    states: dict[str, str] = {}
    # pycountry ships partial annotations; its lookup functions are untyped.
    for sub in pycountry.subdivisions.get(country_code="US"):  # type: ignore[no-untyped-call]
        code = str(sub.code).split("-")[1].lower()
        states[letters_only(fold(str(sub.name)))] = code
    return states


def normalize_state(value: str, country: str | None) -> str | None:
    """US state: the 2-letter code ('California' -> 'ca'); elsewhere letters, lower-case.

    Names map to US codes only when the country is the US or unknown ('Victoria' in Australia
    stays 'victoria'). Canadian provinces are not mapped: the doc asks for codes for US states
    only (the param builder also maps Canada).
    """
    compact = letters_only(fold(value))
    if not compact:
        return None
    if country in (None, "us"):
        return _us_states().get(compact, compact)
    return compact


def normalize_zip(value: str, country: str | None) -> str | None:
    """Lower-case, no spaces or dashes; a US ZIP+4 keeps its first five digits.

    '94025-1234' and '940251234' -> '94025' when the country is the US or unknown;
    'M1 1AE' -> 'm11ae' (the param builder keeps the inner space, against the doc).
    """
    text = _SPACE.sub("", fold(value))
    if country in (None, "us") and _US_ZIP.fullmatch(text):
        return text[:5]
    return strip_punctuation_and_spaces(text) or None


@cache
def normalize_country(value: str) -> str | None:
    """ISO 3166-1 alpha-2, lower-case, from a code or an English name; None when unknown.

    'United States', 'USA', 'us' -> 'us'; 'UK' -> 'gb'; 'Germany' -> 'de'.
    """
    text = fold(value)
    compact = letters_only(text)
    if not compact:
        return None
    if compact in _COUNTRY_ALIASES:
        return _COUNTRY_ALIASES[compact]
    for candidate in (text, compact, " ".join(re.findall(r"[^\W\d_]+", text))):
        try:
            return str(pycountry.countries.lookup(candidate).alpha_2).lower()
        except LookupError:
            continue
    return None
