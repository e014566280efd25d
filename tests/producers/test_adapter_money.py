"""Money: exact minor-to-major conversion by exponent, and decimal text parsing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from producers.adapters.money import (
    THREE_DECIMAL_CURRENCIES,
    ZERO_DECIMAL_CURRENCIES,
    currency_exponent,
    minor_amount,
    minor_to_major,
    normalise_currency,
    parse_major_amount,
)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (15000, "USD", "150.00"),
        (15000, "usd", "150.00"),
        (1, "EUR", "0.01"),
        (0, "GBP", "0.00"),
        (15000, "JPY", "15000"),
        (15000, "jpy", "15000"),
        (999, "KRW", "999"),
        (12345, "KWD", "12.345"),
        (1000, "BHD", "1.000"),
        (5, "TND", "0.005"),
        (10**17 + 1, "USD", "1000000000000000.01"),
    ],
)
def test_minor_to_major(amount: int, currency: str, expected: str) -> None:
    result = minor_to_major(amount, currency)
    assert result == Decimal(expected)
    assert str(result) == expected


def test_exponent_tables_match_stripe() -> None:
    assert len(ZERO_DECIMAL_CURRENCIES) == 16
    assert {currency_exponent(c) for c in ZERO_DECIMAL_CURRENCIES} == {0}
    assert {"BHD", "JOD", "KWD", "OMR", "TND"} == THREE_DECIMAL_CURRENCIES
    assert {currency_exponent(c) for c in THREE_DECIMAL_CURRENCIES} == {3}
    assert currency_exponent("CHF") == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (15000, 15000),
        (Decimal("15000"), 15000),
        (Decimal("15000.0"), 15000),
        (Decimal("150.5"), None),
        (-1, None),
        (True, None),
        ("15000", None),
        (None, None),
        (Decimal("1e999999999"), None),
        (Decimal("NaN"), None),
    ],
)
def test_minor_amount(value: Any, expected: int | None) -> None:
    assert minor_amount(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1500, Decimal("1500")),
        (Decimal("1500.50"), Decimal("1500.50")),
        ("1500", Decimal("1500")),
        ("1,500.00", Decimal("1500.00")),
        ("$ 12,345.67", Decimal("12345.67")),
        (" 99.9 ", Decimal("99.9")),
        ("0", Decimal("0")),
        ("-5", None),
        ("1,50", None),
        ("12e3", None),
        ("NaN", None),
        ("", None),
        ("\u0661\u0662", None),  # non-ASCII digits
        (Decimal("-1"), None),
        (Decimal("1e999999999"), None),
        (False, None),
        (None, None),
        ([1], None),
    ],
)
def test_parse_major_amount(value: Any, expected: Decimal | None) -> None:
    assert parse_major_amount(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("usd", "USD"), (" jpy ", "JPY"), ("US", None), ("US1", None), (5, None), (None, None)],
)
def test_normalise_currency(value: Any, expected: str | None) -> None:
    assert normalise_currency(value) == expected
