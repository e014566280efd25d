"""Phone normalisation: E.164 digits without the '+', as Meta's doc rule asks."""

from __future__ import annotations

import re

import phonenumbers

_INTERNATIONAL_PREFIX = re.compile(r"^[^\d+]*(?:\+|00)")


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


def _digits(number: phonenumbers.PhoneNumber) -> str:
    # E.164 drops the trunk '(0)' and any extension; Meta wants digits only.
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def normalize_phone(value: str, default_country: str | None) -> str | None:
    """Return the phone as country code + national number digits, or None.

    Order: an explicit '+'/'00' prefix is read as international; otherwise the number is read
    as national to ``default_country``; otherwise as digits that already start with a
    country code ('16505551212'), accepted only when that yields a *valid* number. Without a
    prefix or default country, '(650)555-1212' gives None: reading it as +65 would attribute
    it to a Singapore number, and an unhashed guess is worse than no phone at all.
    Vanity letters ('1-800-FLOWERS') are converted by ``phonenumbers`` to the dialled digits,
    where Meta's literal rule ("strip letters") would leave the meaningless '1800'.
    """
    text = value.strip()
    digits = re.sub(r"\D", "", text)
    if not digits:
        return None
    region = default_country.upper() if default_country else None

    prefix = _INTERNATIONAL_PREFIX.match(text)
    if prefix:
        number = _parse("+" + text[prefix.end() :], None)
        if number is not None and phonenumbers.is_possible_number(number):
            return _digits(number)
        # Meta's doc rule as the fallback: the prefix says a country code is there.
        return digits.lstrip("0") or None

    national = _parse(text, region) if region else None
    if national is not None and phonenumbers.is_valid_number(national):
        return _digits(national)
    # A leading 0 without '00' is a national trunk prefix, never the start of a country code.
    with_code = None if digits.startswith("0") else _parse("+" + digits, None)
    if with_code is not None and phonenumbers.is_valid_number(with_code):
        return _digits(with_code)
    if national is not None and phonenumbers.is_possible_number(national):
        # A number in a range newer than phonenumbers' metadata: trust the tenant's country.
        return _digits(national)
    return None
