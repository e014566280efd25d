"""What one event says about its person, hashed and size-checked: pure, no database.

``storage.contacts.record_contacts`` links and merges these facts into ``contacts`` rows.
Only hashes leave this module: raw emails and phones never reach the table.
"""

from __future__ import annotations

import logging
from datetime import datetime

from capi_stream.event import SOURCE_ID_FIELDS, ConversionEvent
from meta_capi.fbc import fbc_from
from meta_capi.hashing import hash_field
from meta_capi.validation import MetaEventValidationError
from storage.contacts import ContactFacts, as_utc

__all__ = ["extract_facts"]

logger = logging.getLogger(__name__)

_ID_MAX = 128  # every source-id column is String(128)
_AD_ID_MAX = 512
_FBP_MAX = 512
_CLICK_MAX = 512
_FBC_MAX = 600


def _fits(value: str | None, limit: int) -> str | None:
    """The value if the column can hold it; an oversized id is dropped, never truncated."""
    return value if value is not None and len(value) <= limit else None


def _first_hash(key: str, values: list[str], default_country: str | None) -> str | None:
    for value in values:
        digest = hash_field(key, value, default_country=default_country)
        if digest is not None:
            return digest
    return None


def _click(
    fbclid: str | None, fbc: str | None, seen_at: datetime
) -> tuple[str | None, str | None, datetime | None]:
    """(fbclid, fbc, when seen in UTC) of the event's click; all None without a well-formed one."""
    raw = fbc or fbclid
    if raw is None:
        return None, None, None
    seen_at = as_utc(seen_at)
    try:
        built = fbc_from(raw, int(seen_at.timestamp() * 1000))
    except MetaEventValidationError:
        logger.info("dropping a malformed click id (fbc/fbclid) from a contact update")
        return None, None, None
    if len(built) > _FBC_MAX:
        return None, None, None
    return built.split(".", 3)[3], built, seen_at


def extract_facts(event: ConversionEvent, default_country: str | None) -> ContactFacts:
    """Hash and size-check the identity fields of ``event`` (pure: no database)."""
    given = event.source_ids.__dict__  # the fields, without a getattr each
    ids = {
        name: value
        for name in SOURCE_ID_FIELDS
        if (value := given[name]) is not None and len(value) <= _ID_MAX
    }
    attribution = event.attribution
    user = event.user
    fbclid, fbc, seen_at = _click(
        attribution.fbclid, attribution.fbc, attribution.click_time or event.event_time
    )
    return ContactFacts(
        event.tenant_id,
        event.event_id,
        event.contact_id,
        ids,
        _first_hash("em", user.emails, default_country),
        # The tenant's country, not the record's own (which build_user_data prefers): a
        # contact's identity must not change with a field the person's next event may omit.
        # Where the two agree, prepare_event finds this hash in the cache.
        _first_hash("ph", user.phones, default_country),
        fbclid,
        fbc,
        seen_at,
        _fits(attribution.fbp, _FBP_MAX),
        _fits(attribution.ad_id, _AD_ID_MAX),
        _fits(user.ctwa_clid, _CLICK_MAX),
    )
