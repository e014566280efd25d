"""Normalise ``user_data`` values exactly as Meta's documentation describes (reference §3).

Meta matches on exact SHA-256 digests, so the normalised text must be byte-identical to what
every other channel (the browser Pixel, offline uploads) produces. Where Meta's SDKs disagree
with the documented rules, this module follows the documented rules and says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from meta_capi._birthdate import normalize_birthdate
from meta_capi._fields import HASHED_KEYS
from meta_capi._geo import normalize_city, normalize_country, normalize_state, normalize_zip
from meta_capi._phone import normalize_phone
from meta_capi._text import fold, strip_punctuation_and_spaces

__all__ = ["normalize_field"]

# Local part, '@', a domain with at least one dot; no spaces. Non-ASCII is allowed (IDN).
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")

_MALE = frozenset({"m", "male", "man", "men", "boy", "mr", "he", "him", "his", "masculine"})
_FEMALE = frozenset(
    {"f", "female", "woman", "women", "girl", "mrs", "ms", "miss", "she", "her", "feminine"}
)


def _email(value: str) -> str | None:
    text = fold(value)
    return text if _EMAIL.fullmatch(text) else None


def _name(value: str) -> str | None:
    # The doc says "no punctuation"; the Python SDK keeps it ("o'brien", "mary-jane").
    return strip_punctuation_and_spaces(fold(value)) or None


def _gender(value: str) -> str | None:
    word = strip_punctuation_and_spaces(fold(value))
    if word in _MALE:
        return "m"
    if word in _FEMALE:
        return "f"
    return None


def _external_id(value: str) -> str | None:
    # Any stable advertiser id; trim + lower-case so 'ABC-1' and 'abc-1 ' hash alike on every
    # channel (the Python SDK does not hash it at all; the Node SDK v26 lower-cases it).
    return fold(value) or None


def normalize_field(key: str, value: str, *, default_country: str | None = None) -> str | None:
    """Return the text Meta wants hashed for ``user_data[key]``, or None if nothing is usable.

    ``default_country`` (ISO alpha-2) supplies the calling code of a national phone number
    and tells whether US state names and ZIP+4 rules apply to ``st`` and ``zp``.

    Raises:
        KeyError: ``key`` is not a hashed ``user_data`` key.
    """
    if key not in HASHED_KEYS:
        raise KeyError(f"{key!r} is not a hashed user_data key")
    plain = _PLAIN.get(key)
    if plain is not None:  # built once: this runs for every hashed field of every event
        return plain(value)
    country = default_country.strip().lower() if default_country else None
    if key == "ph":
        return normalize_phone(fold(value), country)
    if key == "st":
        return normalize_state(value, country)
    return normalize_zip(value, country)


# The normalisers that do not depend on the default country.
_PLAIN: dict[str, Callable[[str], str | None]] = {
    "em": _email,
    "fn": _name,
    "ln": _name,
    "ge": _gender,
    "db": normalize_birthdate,
    "ct": normalize_city,
    "country": normalize_country,
    "external_id": _external_id,
}
