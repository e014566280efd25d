"""Money: minor units to exact ``Decimal`` major units by currency exponent, and decimal text.

Exponents follow Stripe's currency list (https://docs.stripe.com/currencies): zero-decimal
currencies are charged in whole units, three-decimal ones in thousandths, all others in
hundredths. Arithmetic is exact; a float never touches an amount.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})

_CURRENCY = re.compile(r"^[A-Za-z]{3}$", re.ASCII)
_AMOUNT = re.compile(r"^\$?\s*(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$", re.ASCII)
_MAX_ADJUSTED = 18  # beyond 10**18 major units an amount is garbage, not money


def normalise_currency(value: Any) -> str | None:
    """An upper-case three-letter code, or ``None`` when ``value`` is not one."""
    if isinstance(value, str) and _CURRENCY.match(value.strip()):
        return value.strip().upper()
    return None


def currency_exponent(currency: str) -> int:
    """How many decimal places the currency's minor unit has (0, 2 or 3)."""
    code = currency.upper()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def minor_to_major(amount_minor: int, currency: str) -> Decimal:
    """``1500 USD`` -> ``Decimal("15.00")``; ``1500 JPY`` -> ``1500``; ``1500 KWD`` -> ``1.500``."""
    exponent = currency_exponent(currency)
    return Decimal(amount_minor).scaleb(-exponent) if exponent else Decimal(amount_minor)


def minor_amount(value: Any) -> int | None:
    """A non-negative integer amount in minor units, or ``None`` (booleans are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        if not value.is_finite() or value.adjusted() > _MAX_ADJUSTED:
            return None
        if value != value.to_integral():
            return None
        value = int(value)
    if isinstance(value, int) and 0 <= value < 10**_MAX_ADJUSTED:
        return value
    return None


def parse_major_amount(value: Any) -> Decimal | None:
    """A non-negative decimal in major units from a number or text like ``"1,500.00"``.

    Text may carry a leading ``$`` and thousands separators; anything else is ``None``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str) and _AMOUNT.match(value.strip()):
        try:
            amount = Decimal(value.strip().lstrip("$").strip().replace(",", ""))
        except InvalidOperation:
            return None
    else:
        return None
    if not amount.is_finite() or amount < 0 or amount.adjusted() > _MAX_ADJUSTED:
        return None
    return amount
