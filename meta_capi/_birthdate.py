"""Date-of-birth normalisation to Meta's ``YYYYMMDD``."""

from __future__ import annotations

import calendar
import re
from datetime import date

# English month names and abbreviations ("sept" too), lower-case -> month number.
_MONTHS: dict[str, int] = {
    **{name.lower(): i for i, name in enumerate(calendar.month_name) if name},
    **{abbr.lower(): i for i, abbr in enumerate(calendar.month_abbr) if abbr},
    "sept": 9,
}
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_ISO_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[t ]")
_WORD = re.compile(r"[^\W\d_]+")
_ORDINAL = re.compile(r"(\d)(?:st|nd|rd|th)\b")
_NUMBER = re.compile(r"\d+")
_EIGHT_DIGITS = re.compile(r"\d{8}")
_SEPARATED = re.compile(r"(\d{1,4})\s*([./-])\s*(\d{1,2})\s*\2\s*(\d{1,4})")
_SPACED = re.compile(r"(\d{1,4})(\s)+(\d{1,2})\s+(\d{1,4})")


def _make(year: int, month: int, day: int, today: date) -> str | None:
    # Meta accepts years 1900..current; a date after today cannot be a birth date.
    if not 1900 <= year <= today.year:
        return None
    try:
        born = date(year, month, day)
    except ValueError:
        return None
    return f"{year:04d}{month:02d}{day:02d}" if born <= today else None  # strftime is slower


def _from_numbers(parts: list[str], separator: str, today: date) -> str | None:
    a, b, c = parts
    if len(a) == 4:
        return _make(int(a), int(b), int(c), today)  # ISO order: year, month, day
    if len(c) != 4:
        return None  # two-digit years are ambiguous across centuries: refuse them
    first, second, year = int(a), int(b), int(c)
    # '.' is the day-first European style; '/' and '-' read month first (US), unless the
    # first number cannot be a month (16/02/1997), then day first.
    if separator == "." or first > 12:
        return _make(year, second, first, today)
    return _make(year, first, second, today)


def normalize_birthdate(value: str, today: date | None = None) -> str | None:
    """Return ``value`` as ``YYYYMMDD``, or None when it is not a plausible birth date.

    Accepted: '1997-02-16' (also with a time part), '19970216', '2/16/1997' (month first),
    '16/2/1997' (day first, because 16 cannot be a month), '16.02.1997' (day first),
    '02161997' (read like '02/16/1997'), 'February 16, 1997', '16 Feb 1997'.
    """
    today = today or date.today()
    text = value.strip().lower()
    if plain := _ISO_DATE.fullmatch(text):  # the usual form: skip the other readings
        return _make(int(plain[1]), int(plain[2]), int(plain[3]), today)
    iso = _ISO_DATETIME.match(text)
    if iso:
        text = iso.group(1)
    text = _ORDINAL.sub(r"\1", text)  # '16th' -> '16'

    words = _WORD.findall(text)
    if words:
        months = [_MONTHS[w] for w in words if w in _MONTHS]
        numbers = _NUMBER.findall(text)
        if len(words) != 1 or len(months) != 1 or len(numbers) != 2:
            return None
        years = [n for n in numbers if len(n) == 4]
        days = [n for n in numbers if len(n) <= 2]
        if len(years) != 1 or len(days) != 1:
            return None
        return _make(int(years[0]), months[0], int(days[0]), today)

    if _EIGHT_DIGITS.fullmatch(text):
        as_iso = _make(int(text[:4]), int(text[4:6]), int(text[6:]), today)
        if as_iso is not None:
            return as_iso
        return _from_numbers([text[:2], text[2:4], text[4:]], "", today)

    match = _SEPARATED.fullmatch(text)
    if match is None:
        match = _SPACED.fullmatch(text)
    if match is None:
        return None
    return _from_numbers([match.group(1), match.group(3), match.group(4)], match.group(2), today)
