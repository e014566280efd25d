"""SHA-256 hashing of ``user_data`` and assembly of a ready-to-send ``user_data`` dict."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence

from meta_capi._fields import HASHED_KEYS, LIST_KEYS, NEVER_HASH_KEYS, USER_DATA_KEYS
from meta_capi._geo import normalize_country
from meta_capi.normalize import normalize_field
from meta_capi.validation import SUBCODE_PARAMETER_ERROR, MetaEventValidationError

__all__ = [
    "build_user_data",
    "hash_email",
    "hash_field",
    "hash_name",
    "hash_phone",
    "hash_value",
    "is_sha256_hex",
    "user_country",
]

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

RawUserData = Mapping[str, str | Sequence[str] | None]


def is_sha256_hex(value: str) -> bool:
    """True when ``value`` is exactly 64 lowercase hex characters (Meta's hashed format)."""
    return _SHA256_HEX.fullmatch(value) is not None


def hash_field(key: str, value: str, *, default_country: str | None = None) -> str | None:
    """Return the lowercase SHA-256 hex of ``normalize_field(key, value)``, or None.

    A value that already is a 64-hex SHA-256 digest passes through lower-cased, so hashing is
    done exactly once. A 32-hex value is hashed like any other text: Meta's SDKs pass it
    through as "MD5", which sends a dash-less UUID or MD5 in the clear; Meta accepts only
    SHA-256.

    Raises:
        KeyError: ``key`` is not a hashed ``user_data`` key (a programming error).
    """
    if key not in HASHED_KEYS:
        raise KeyError(f"{key!r} is not a hashed user_data key")
    return _hash(key, value, _context(default_country) if key in _COUNTRY_KEYS else None)


def _context(country: str | None) -> str | None:
    """``country`` as ``normalize_field`` reads it ('US' and 'us' alike), so one value makes
    one cache entry whichever spelling asked; None for no country."""
    if not country:
        return None
    return country.strip().lower() or country  # blank stays blank: not the same as None


_COUNTRY_KEYS = frozenset({"ph", "st", "zp"})


# Hashing is pure and phone parsing costs ~0.1 ms: one person's values recur across their
# events and across the worker's contact and send steps, so a bounded cache pays for itself.
@functools.lru_cache(maxsize=65_536)
def _hash(key: str, value: str, country: str | None) -> str | None:
    if len(value) >= 64:  # only then can it be a digest already
        candidate = value.strip().lower()
        if len(candidate) == 64 and is_sha256_hex(candidate):
            return candidate
    normalized = normalize_field(key, value, default_country=country)
    if normalized is None:
        return None
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


# For callers that build user_data from typed fields themselves (the worker, once per event):
# ``key`` must be a hashed key and ``country`` what ``user_country`` returns for it.
hash_value = _hash


@functools.lru_cache(maxsize=4_096)
def user_country(country: str | None, default_country: str | None) -> str | None:
    """The country that reads a record's phone numbers, states and ZIP codes, as
    ``hash_value`` takes it: the record's own ``country`` when it names one (a digest does
    not), else ``default_country``. Cached: a worker meets few pairs."""
    context = default_country
    if country and not is_sha256_hex(country.strip().lower()):
        context = normalize_country(country) or default_country
    return _context(context)


def hash_email(value: str) -> str | None:
    """Hash an email address (``em``); None when it does not look like one."""
    return hash_field("em", value)


def hash_phone(value: str, default_country: str | None = None) -> str | None:
    """Hash a phone number (``ph``); ``default_country`` resolves national numbers."""
    return hash_field("ph", value, default_country=default_country)


def hash_name(value: str) -> str | None:
    """Hash a first or last name (``fn``/``ln`` share one rule)."""
    return hash_field("fn", value)


def build_user_data(
    raw: RawUserData, *, default_country: str | None = None
) -> dict[str, str | list[str]]:
    """Return Meta's ``user_data`` object from raw (or already hashed) customer information.

    Hashed keys are normalised and hashed; ``em``, ``ph`` and ``external_id`` accept lists and
    always come out as de-duplicated lists in input order. Never-hash keys (IP, user agent,
    fbc, fbp, messaging ids...) pass through untouched. None, empty and unusable values are
    dropped. The record's own ``country`` wins over ``default_country`` for reading phone
    numbers, states and ZIP codes.

    Raises:
        MetaEventValidationError: an unknown key, or a list for a single-valued key.
    """
    if not USER_DATA_KEYS.issuperset(raw):
        unknown = sorted(set(raw) - USER_DATA_KEYS)
        raise MetaEventValidationError(
            f"unknown user_data keys: {', '.join(unknown)}",
            field=f"user_data.{unknown[0]}",
            subcode=SUBCODE_PARAMETER_ERROR,
        )
    country = raw.get("country")
    local = user_country(country if isinstance(country, str) else None, default_country)

    result: dict[str, str | list[str]] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if key in NEVER_HASH_KEYS:
            if not isinstance(value, str):
                raise MetaEventValidationError(
                    f"user_data[{key!r}] takes one string", field=f"user_data.{key}"
                )
            if value.strip():
                result[key] = value
            continue
        country_here = local if key in _COUNTRY_KEYS else None
        if isinstance(value, str):
            digest = _hash(key, value, country_here)
            if digest is not None:
                result[key] = [digest] if key in LIST_KEYS else digest
            continue
        if key not in LIST_KEYS:
            raise MetaEventValidationError(
                f"user_data[{key!r}] takes one string, not a list", field=f"user_data.{key}"
            )
        hashes: list[str] = []
        for item in value:
            digest = _hash(key, item, country_here)
            if digest is not None and digest not in hashes:
                hashes.append(digest)
        if hashes:
            result[key] = hashes
    return result
