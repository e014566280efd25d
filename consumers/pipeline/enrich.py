"""Enrichment from ``contacts`` and the raw ``user_data`` mapping of one event.

The event's own values win; what the contact row remembers (a click id seen on an earlier
webhook, the browser id) fills the gaps. ``external_id`` always includes the internal
contact id, so every channel of one person matches on it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from capi_stream.event import ConversionEvent
from meta_capi.fbc import fbc_from, is_valid_fbc
from meta_capi.validation import MetaEventValidationError
from storage.contacts import LinkedContact

logger = logging.getLogger(__name__)

RawUser = dict[str, str | list[str] | None]


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
    try:
        fbc = fbc_from(value, _millis(first_seen))
    except MetaEventValidationError:
        return None
    return fbc if is_valid_fbc(fbc) else None


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


# Meta key <- UserIdentity field, in the order Meta's payload lists them.
_PERSON = (
    ("fn", "first_name"),
    ("ln", "last_name"),
    ("ge", "gender"),
    ("db", "date_of_birth"),
    ("ct", "city"),
    ("st", "state"),
    ("zp", "zip"),
    ("country", "country"),
)
_MESSAGING = (
    ("page_id", "page_id"),
    ("page_scoped_user_id", "page_scoped_user_id"),
    ("ig_account_id", "ig_account_id"),
    ("ig_sid", "ig_sid"),
    ("whatsapp_business_account_id", "whatsapp_business_account_id"),
    ("lead_id", "lead_id"),
)


def raw_user_data(event: ConversionEvent, contact: ContactHints | None) -> RawUser:
    """The ``user_data`` keys of Meta, raw (or already hashed), ready for ``build_user_data``.

    Empty values are left out; the keys come in one fixed order.
    """
    user = event.user
    raw: RawUser = {}
    if user.emails:
        raw["em"] = list(user.emails)
    if user.phones:
        raw["ph"] = list(user.phones)
    for key, name in _PERSON:
        if value := getattr(user, name):
            raw[key] = value
    external_ids = list(user.external_ids)
    if event.contact_id is not None:
        external_ids.append(str(event.contact_id))
    if external_ids:
        raw["external_id"] = external_ids
    if event.client_ip_address:
        raw["client_ip_address"] = event.client_ip_address
    if event.client_user_agent:
        raw["client_user_agent"] = event.client_user_agent
    if fbc := resolve_fbc(event, contact):
        raw["fbc"] = fbc
    if fbp := event.attribution.fbp or (contact.fbp if contact else None):
        raw["fbp"] = fbp
    if ctwa_clid := user.ctwa_clid or (contact.ctwa_clid if contact else None):
        raw["ctwa_clid"] = ctwa_clid
    for key, name in _MESSAGING:
        if value := getattr(user, name):
            raw[key] = value
    return raw
