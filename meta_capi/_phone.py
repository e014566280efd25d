"""Phone normalisation: E.164 digits without the '+', as Meta's doc rule asks.

``phonenumbers`` decides every reading; E.164 text and plain national numbers take fast
paths that give exactly what its ``parse``/``is_valid_number`` path gives (the differential
tests in ``tests/meta_capi`` hold them to that), from its metadata compiled once per region.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberDesc

_INTERNATIONAL_PREFIX = re.compile(r"^[^\d+]*(?:\+|00)")
_E164 = re.compile(r"\+([1-9]\d{6,14})")
# ASCII digits and the punctuation people type around them: no '+', letters, extensions.
_NATIONAL_TEXT = re.compile(r"[0-9 ().\-]*[0-9][0-9 ().\-]*")
_NON_DIGITS = re.compile(r"\D")
# The number types ``phonenumbers.is_valid_number`` tries: a valid number has one of them.
_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)
_MAX_NSN = 17  # phonenumbers' _MAX_LENGTH_FOR_NSN
_MAX_INPUT = 250  # phonenumbers' _MAX_INPUT_STRING_LENGTH

Desc = tuple[frozenset[int], re.Pattern[str]] | None


def _desc(desc: PhoneNumberDesc | None) -> Desc:
    """A number description as (possible lengths, pattern); None when nothing matches it."""
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length), re.compile(desc.national_number_pattern)


def _matches(nsn: str, desc: Desc) -> bool:
    # phonenumbers' _is_number_matching_desc: the lengths (when listed), then a full match.
    if desc is None:
        return False
    lengths, pattern = desc
    return (not lengths or len(nsn) in lengths) and pattern.fullmatch(nsn) is not None


@dataclass(frozen=True, slots=True)
class _Plan:
    """One region's numbering plan, compiled once from ``phonenumbers``' metadata."""

    general: Desc
    typed: dict[int, re.Pattern[str]]  # by length: the patterns of every type of that length
    leading_digits: re.Pattern[str] | None

    @classmethod
    def of(cls, metadata: PhoneMetadata) -> _Plan:
        names = _TYPES[:-1] if metadata.same_mobile_and_fixed_line_pattern else _TYPES
        types = [desc for name in names if (desc := _desc(getattr(metadata, name)))]
        typed = {}
        for size in range(_MAX_NSN + 1):
            patterns = [p.pattern for lengths, p in types if not lengths or size in lengths]
            if patterns:  # any type will do: one alternation tries them all
                typed[size] = re.compile("|".join(f"(?:{p})" for p in patterns))
        leading = metadata.leading_digits
        return cls(
            _desc(metadata.general_desc),
            typed,
            re.compile(leading) if leading is not None else None,
        )

    def has_type(self, nsn: str) -> bool:
        """``_number_type_helper(nsn) != UNKNOWN``."""
        if not _matches(nsn, self.general):
            return False
        pattern = self.typed.get(len(nsn))
        return pattern is not None and pattern.fullmatch(nsn) is not None


@dataclass(frozen=True, slots=True)
class _Region:
    """What parsing a national number of one default region needs, precompiled."""

    code: str  # the country calling code, as digits
    idd: re.Pattern[str] | None
    national_prefix: re.Pattern[str] | None
    transform: str | None
    lengths: tuple[int, ...]  # general possible lengths, sorted
    local_lengths: frozenset[int]
    general: Desc
    plans: tuple[_Plan, ...]  # every region of the calling code, main one first
    shared: bool  # the calling code has several regions (region_code_for_number picks)
    possible: frozenset[int]  # is_possible_number's lengths: the main region's, local too

    def strip_prefix(self, digits: str) -> str:
        """``phonenumbers``' national prefix (and carrier code) stripping, then its check
        that what is left has a possible length (otherwise the digits are kept)."""
        match = self.national_prefix.match(digits) if self.national_prefix else None
        if match is None:
            return digits
        viable = _matches_pattern(digits, self.general)
        groups = match.groups()
        if self.transform and groups and groups[-1] is not None:
            stripped = match.expand(self.transform) + digits[match.end() :]
        else:
            stripped = digits[match.end() :]
        if viable and not _matches_pattern(stripped, self.general):
            return digits
        size = len(stripped)
        if size in self.local_lengths or size < self.lengths[0]:
            return digits  # TOO_SHORT or IS_POSSIBLE_LOCAL_ONLY
        if size <= self.lengths[-1] and size not in self.lengths:
            return digits  # INVALID_LENGTH
        return stripped

    def is_valid(self, nsn: str) -> bool:
        """``phonenumbers.is_valid_number`` for this calling code and national number."""
        if not self.shared:
            return bool(self.plans) and self.plans[0].has_type(nsn)
        for plan in self.plans:  # region_code_for_number: leading digits decide, else validity
            if plan.leading_digits is not None:
                if plan.leading_digits.match(nsn):
                    return plan.has_type(nsn)
            elif plan.has_type(nsn):
                return True
        return False


def _matches_pattern(digits: str, desc: Desc) -> bool:
    # _match_national_number: the pattern alone, without the length check.
    return desc is not None and desc[1].fullmatch(digits) is not None


def _compile(metadata: PhoneMetadata) -> _Region | None:
    code = metadata.country_code
    general = metadata.general_desc
    if not code or general is None or not general.possible_length:
        return None
    members = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, ())
    plans = []
    for member in members:
        member_metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, member)
        if member_metadata is not None:
            plans.append(_Plan.of(member_metadata))
    main = PhoneMetadata.metadata_for_region_or_calling_code(code, members[0]) if members else None
    possible: frozenset[int] = frozenset()
    if main is not None and main.general_desc is not None:
        possible = frozenset(main.general_desc.possible_length) | frozenset(
            main.general_desc.possible_length_local_only
        )
    prefix = metadata.national_prefix_for_parsing
    idd = metadata.international_prefix
    return _Region(
        code=str(code),
        idd=re.compile(idd) if idd else None,
        national_prefix=re.compile(prefix) if prefix else None,
        transform=metadata.national_prefix_transform_rule or None,
        lengths=tuple(sorted(general.possible_length)),
        local_lengths=frozenset(general.possible_length_local_only),
        general=_desc(general),
        plans=tuple(plans),
        shared=len(members) > 1,
        possible=possible,
    )


@functools.cache
def _region(region: str) -> _Region | None:
    """The compiled plan of a default region; None when ``phonenumbers`` does not know it."""
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if region not in phonenumbers.SUPPORTED_REGIONS or metadata is None:
        return None
    return _compile(metadata)


@functools.cache
def _calling_code(code: int) -> _Region | None:
    """The compiled plan ``parse`` uses for a number with this country calling code."""
    region = phonenumbers.region_code_for_country_code(code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    return _compile(metadata) if metadata is not None else None


class _Unsure(Exception):
    """A case the fast path leaves to ``phonenumbers``."""


_CALLING_CODES = {str(code): code for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}


def _split_code(digits: str) -> tuple[int, str] | None:
    """``phonenumbers``' reading of digits after a '+': the calling code and the rest.

    ``digits`` does not start with 0 (no calling code does; the callers see to it).
    """
    for size in (1, 2, 3):
        code = _CALLING_CODES.get(digits[:size])
        if code is not None:
            return code, digits[size:]
    return None


def _valid_with_code(digits: str) -> str | None:
    """``parse('+' + digits)`` when it is a valid number, else None.

    Raises:
        _Unsure: no compiled plan for the calling code.
    """
    split = _split_code(digits) if len(digits) > 2 else None
    if split is None:
        return None  # parse fails: too short, or no such calling code
    code, rest = split
    plan = _calling_code(code)
    if plan is None:
        raise _Unsure
    if len(rest) < 2:
        return None
    nsn = plan.strip_prefix(rest)
    if len(nsn) > _MAX_NSN or not plan.is_valid(nsn):
        return None
    return plan.code + nsn


def _national_digits(text: str, digits: str, region: str | None) -> str | None:
    """What the parsing path returns for a plain national number, or None to parse it.

    Only digits and ``( ) . -`` and spaces, without the '+'/'00' prefix, in a region
    ``phonenumbers`` knows: then ``parse(text, region)`` reads the region's calling code + the
    digits less the national prefix, and ``is_valid_number``, ``parse('+' + digits)`` and
    ``is_possible_number`` decide as the compiled plans do here. Digits that could start
    with an international prefix or the region's own calling code are parsed.
    """
    if region is None or len(text) > _MAX_INPUT or _NATIONAL_TEXT.fullmatch(text) is None:
        return None
    plan = _region(region)
    if plan is None:
        return None
    if len(digits) < 3 or digits.startswith(plan.code):
        return None
    if plan.idd is not None and plan.idd.match(digits):
        return None
    nsn = plan.strip_prefix(digits)
    if len(nsn) > _MAX_NSN:
        return None
    if plan.is_valid(nsn):
        return plan.code + nsn
    try:  # normalize_phone's next readings, in its order
        with_code = None if digits.startswith("0") else _valid_with_code(digits)
    except _Unsure:
        return None
    if with_code is not None:
        return with_code
    if len(nsn) in plan.possible:
        return plan.code + nsn
    return None  # no phone at all: rare enough to let the parsing path say so


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
    split = _split_code(digits)
    if split is None:
        return None
    plan = _calling_code(split[0])
    if plan is None:
        return None
    if plan.national_prefix is not None and plan.national_prefix.match(split[1]):
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
    digits = _NON_DIGITS.sub("", text)
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

    fast = _national_digits(text, digits, region)
    if fast is not None:
        return fast
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
