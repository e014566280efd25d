"""How long Meta asks us to wait, read from its rate-limit headers."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

__all__ = ["BUC_HEADER", "parse_retry_after"]

BUC_HEADER = "x-business-use-case-usage"
_AD_ACCOUNT_HEADER = "x-ad-account-usage"


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    for key, val in headers.items():
        if key.lower() == name:
            return val
    return None


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait before calling Meta again, from the rate-limit headers, or None.

    Order: ``X-Business-Use-Case-Usage`` (max ``estimated_time_to_regain_access``, minutes),
    ``X-Ad-Account-Usage`` ``reset_time_duration`` (seconds), then ``Retry-After`` (seconds).
    """
    buc = _header(headers, BUC_HEADER)
    if buc:
        minutes: list[float] = []
        try:
            usage = json.loads(buc)
        except ValueError:
            usage = None
        if isinstance(usage, dict):
            for entries in usage.values():
                items = entries if isinstance(entries, list) else [entries]
                for entry in items:
                    wait = (
                        entry.get("estimated_time_to_regain_access")
                        if isinstance(entry, dict)
                        else None
                    )
                    if isinstance(wait, int | float) and not isinstance(wait, bool):
                        minutes.append(float(wait))
        if minutes:
            return max(minutes) * 60.0
    account = _header(headers, _AD_ACCOUNT_HEADER)
    if account:
        try:
            reset = json.loads(account).get("reset_time_duration")
        except (ValueError, AttributeError):
            reset = None
        if isinstance(reset, int | float) and not isinstance(reset, bool):
            return float(reset)
    retry_after = _header(headers, "retry-after")
    if retry_after:
        return _retry_after_seconds(retry_after)
    return None


def _retry_after_seconds(value: str) -> float | None:
    """``Retry-After`` is delay-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        return None
    return max(0.0, when.timestamp() - time.time())
