"""Enrichment from ``contacts``: the click and browser ids an event's ``user_data`` carries.

The event's own values win; what the contact row remembers (a click id seen on an earlier
webhook, the browser id) fills the gaps. ``prepare`` puts them into ``user_data``.
"""

from __future__ import annotations

import logging
from datetime import datetime

from capi_stream.event import ConversionEvent
from meta_capi.fbc import build_fbc, is_valid_fbc
from meta_capi.validation import MetaEventValidationError
from storage.contacts import LinkedContact

logger = logging.getLogger(__name__)


# What a ``contacts`` row contributes to an event: the contact step's own result, as it is.
ContactHints = LinkedContact


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _valid_fbc(value: str | None, first_seen: datetime) -> str | None:
    """A well-formed fbc from an fbc or a bare fbclid; None (dropped) when malformed.

    A malformed click id makes Meta refuse the whole request (2804001); dropping it loses
    one match key instead of the conversion.
    """
    if not value:
        return None
    if value.startswith("fb."):  # as fbc_from, without building the time it would not use
        return value if is_valid_fbc(value) else None
    try:
        return build_fbc(value, _millis(first_seen))  # always well formed
    except MetaEventValidationError:
        return None


def resolve_fbc(event: ConversionEvent, contact: ContactHints | None) -> str | None:
    """The event's fbc, else one built from its fbclid, else the contact's.

    A bare fbclid the contact already holds is the same click seen again: the contact's fbc
    keeps the time it was first seen, as Meta asks, instead of this event's time.
    """
    attribution = event.attribution
    first_seen = attribution.click_time or event.event_time
    fbc = _valid_fbc(attribution.fbc, first_seen)
    same_click = contact is not None and attribution.fbclid == contact.fbclid
    if fbc is None and attribution.fbclid and same_click:
        assert contact is not None
        fbc = _valid_fbc(contact.fbc, contact.fbc_first_seen_at or first_seen)
    fbc = fbc or _valid_fbc(attribution.fbclid, first_seen)
    if fbc is None and contact is not None:
        seen = contact.fbc_first_seen_at or event.event_time
        fbc = _valid_fbc(contact.fbc, seen) or _valid_fbc(contact.fbclid, seen)
    return fbc


def resolve_ad_id(event: ConversionEvent, contact: ContactHints | None) -> str | None:
    return event.attribution.ad_id or (contact.ad_id if contact else None)
