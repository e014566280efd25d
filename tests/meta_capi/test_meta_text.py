"""The text helpers give what the per-character Unicode definitions give, for any text."""

from __future__ import annotations

import random
import string
import unicodedata

from meta_capi._text import fold, letters_only, strip_punctuation_and_spaces


def random_text(rng: random.Random) -> str:
    ranges = (0x80, 0x3000, 0x110000)  # ASCII, the common scripts, everything
    return "".join(chr(rng.randrange(rng.choice(ranges))) for _ in range(rng.randrange(12)))


def test_text_helpers_match_their_unicode_definitions() -> None:
    rng = random.Random(13)
    samples = [" Valéry ", "VALE\u0301RY", "o'brien", "São Paulo", "\u00a0x\u200b", "ǅ"]
    samples += [random_text(rng) for _ in range(20_000)]
    ascii_names = string.ascii_letters + string.digits + " -'."  # the ASCII fast paths
    samples += ["".join(rng.choices(ascii_names, k=rng.randrange(12))) for _ in range(5_000)]
    for text in samples:
        categories = [unicodedata.category(ch)[0] for ch in text]
        letters = "".join(ch for ch, cat in zip(text, categories, strict=True) if cat in "LM")
        kept = "".join(ch for ch, cat in zip(text, categories, strict=True) if cat not in "PSZC")
        nfc = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).strip().lower())
        assert letters_only(text) == letters, text
        assert strip_punctuation_and_spaces(text) == kept, text
        assert fold(text) == nfc, text
