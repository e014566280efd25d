"""Build Meta's ``fbc`` click-id parameter (``fb.{subdomain_index}.{ms}.{fbclid}``).

A malformed ``fbc`` is refused by Meta with subcode 2804001, and one bad event fails the whole
batch, so click ids are checked here rather than discovered at send time.
"""

from __future__ import annotations

import re

from meta_capi.validation import SUBCODE_BAD_CLICK_ID, MetaEventValidationError

__all__ = ["build_fbc", "fbc_from", "is_valid_fbc"]

_FBCLID = re.compile(r"[A-Za-z0-9_-]+")
# fb.<index>.<ms>.<fbclid>, optionally with the param builder's documented 5th '.appendix'.
_FBC = re.compile(r"fb\.\d\.\d{13}\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]{2,8})?")
# Before 2001-09-09 a ms timestamp has fewer than 13 digits: it is really seconds.
_MIN_MS = 10**12


def _error(message: str) -> MetaEventValidationError:
    return MetaEventValidationError(message, field="user_data.fbc", subcode=SUBCODE_BAD_CLICK_ID)


def is_valid_fbc(value: str) -> bool:
    """True when ``value`` has the shape Meta documents for ``fbc``."""
    return _FBC.fullmatch(value) is not None


def build_fbc(fbclid: str, first_seen_ms: int, subdomain_index: int = 1) -> str:
    """Return ``fb.<subdomain_index>.<first_seen_ms>.<fbclid>``, keeping the fbclid's case.

    ``first_seen_ms`` is when the click id was first seen, in milliseconds; ``1`` is the
    index Meta prescribes for a server-built value.

    Raises:
        MetaEventValidationError: an fbc given as fbclid (use ``fbc_from``), characters
            outside ``[A-Za-z0-9_-]`` (URL-encoded junk), or a time that is not milliseconds.
    """
    if fbclid.startswith("fb."):
        raise _error("value is already an fbc, not an fbclid; use fbc_from() to pass it through")
    if _FBCLID.fullmatch(fbclid) is None:
        raise _error("fbclid may hold only letters, digits, '_' and '-'")
    if isinstance(first_seen_ms, bool) or not _MIN_MS <= first_seen_ms < 10 * _MIN_MS:
        raise _error(f"first_seen_ms={first_seen_ms} is not a Unix time in milliseconds")
    if not 0 <= subdomain_index <= 9:
        raise _error(f"subdomain_index={subdomain_index} is out of range 0..9")
    return f"fb.{subdomain_index}.{first_seen_ms}.{fbclid}"


def fbc_from(fbclid_or_fbc: str, first_seen_ms: int) -> str:
    """Return a valid ``fbc`` from either an existing ``_fbc`` value or a bare fbclid.

    An existing value (starting with ``fb.``) passes through unchanged if well formed, so a
    cookie is never wrapped twice (``fb.1.x.fb.1.y.id`` is a known cause of 2804001).

    Raises:
        MetaEventValidationError: the value is neither a well-formed fbc nor a valid fbclid.
    """
    if fbclid_or_fbc.startswith("fb."):
        if not is_valid_fbc(fbclid_or_fbc):
            raise _error("malformed fbc; expected fb.<index>.<ms>.<fbclid>")
        return fbclid_or_fbc
    return build_fbc(fbclid_or_fbc, first_seen_ms)
