"""Phone normalisation: E.164 digits without the '+', as Meta's doc rule asks."""

from __future__ import annotations

import functools
import re

import phonenumbers
from phonenumbers import PhoneMetadata

_INTERNATIONAL_PREFIX = re.compile(r"^[^\d+]*(?:\+|00)")
_E164 = re.compile(r"\+([1-9]\d{6,14})")


@functools.cache
def _national_prefix(country_code: int) -> re.Pattern[str] | None:
    """The pattern ``phonenumbers.parse`` strips from a national number of this country code.

    Raises:
        LookupError: no metadata for the code (the caller then parses).
    """
    region = phonenumbers.region_code_for_country_code(country_code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is None:
        raise LookupError(country_code)
    pattern = metadata.national_prefix_for_parsing
    return re.compile(pattern) if pattern else None


def _e164_digits(text: str) -> str | None:
    """The digits of a number already in E.164 (``+16505551212``), or None to parse it.

    What the parsing path returns for such text, without parsing: the country code is the
    1-3 digit prefix ``phonenumbers`` would take, and every outcome of the path (possible
    number, impossible number, parse failure) yields the digits unchanged unless the national
    part starts with a prefix ``phonenumbers`` strips. Those, and unknown codes, are parsed.
    """
    match = _E164.fullmatch(text)
    if match is None:
        return None
    digits = match.group(1)
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    try:
        prefix = _national_prefix(code)
    except LookupError:
        return None
    if prefix is not None and prefix.match(digits[size:]):
        return None
    return digits


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
    fast = _e164_digits(text)
    if fast is not None:
        return fast
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
