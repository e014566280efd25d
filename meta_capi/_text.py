"""Unicode helpers shared by the field normalisers."""

from __future__ import annotations

import unicodedata


def fold(value: str) -> str:
    """Return ``value`` in NFC, trimmed and lower-cased.

    NFC comes first because Meta's doc digest for ``valéry`` is the NFC one, and NFD input
    (e + U+0301) would otherwise hash differently; NFC again after ``lower()`` because
    lower-casing can leave a decomposed sequence behind.
    """
    if value.isascii():  # most input: ASCII is its own NFC
        return value.strip().lower()
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", value).strip().lower())


class _Filter(dict[int, int | None]):
    """A ``str.translate`` table that keeps the characters of some Unicode categories.

    Filled as characters are met, so each category is looked up once per character, not
    once per occurrence; ``translate`` then runs at C speed. Bounded: hostile text cannot
    make it hold all of Unicode.
    """

    def __init__(self, keep: str) -> None:
        super().__init__()
        self._keep = keep

    def __missing__(self, code: int) -> int | None:
        kept = code if unicodedata.category(chr(code))[0] in self._keep else None
        if len(self) < 65_536:
            self[code] = kept
        return kept


_LETTERS = _Filter("LM")
_NO_PUNCTUATION = _Filter("LMN")  # everything but P*, S*, Z* and C*


def letters_only(value: str) -> str:
    """Keep letters (any script) and combining marks; drop punctuation, symbols, spaces, digits."""
    if value.isascii() and value.isalpha():  # nothing to drop: skip the per-character table
        return value
    return value.translate(_LETTERS)


def strip_punctuation_and_spaces(value: str) -> str:
    """Drop Unicode punctuation (P*), symbols (S*), separators (Z*) and controls (C*)."""
    if value.isascii() and value.isalnum():  # ASCII letters and digits (L*, N*) all stay
        return value
    return value.translate(_NO_PUNCTUATION)
