"""Unicode helpers shared by the field normalisers."""

from __future__ import annotations

import unicodedata


def fold(value: str) -> str:
    """Return ``value`` in NFC, trimmed and lower-cased.

    NFC comes first because Meta's doc digest for ``valéry`` is the NFC one, and NFD input
    (e + U+0301) would otherwise hash differently; NFC again after ``lower()`` because
    lower-casing can leave a decomposed sequence behind.
    """
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", value).strip().lower())


def letters_only(value: str) -> str:
    """Keep letters (any script) and combining marks; drop punctuation, symbols, spaces, digits."""
    return "".join(ch for ch in value if unicodedata.category(ch)[0] in "LM")


def strip_punctuation_and_spaces(value: str) -> str:
    """Drop Unicode punctuation (P*), symbols (S*), separators (Z*) and controls (C*)."""
    return "".join(ch for ch in value if unicodedata.category(ch)[0] not in "PSZC")
