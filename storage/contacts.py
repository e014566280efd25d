"""Repository of ``contacts``: find-or-create one person per tenant and merge what we learn.

Identity is linked on our own contact id when a sender echoes it back, then on the sources'
stable ids, then on the hashed email, then on the hashed phone (reference section 6: never
on a name). Merging never loses anything: a value
already stored is never replaced by a null or an absent one (MCB's bug 2.4), ``ad_id`` is
first-touch, and the ``fbc`` of a click keeps the time that click was *first* seen.
Only hashes are stored; raw emails and phones never reach the table.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from capi_stream.event import ConversionEvent
from meta_capi.fbc import fbc_from
from meta_capi.hashing import hash_field
from meta_capi.validation import MetaEventValidationError
from storage.models import Contact

__all__ = ["ContactFacts", "extract_facts", "record_contact"]

logger = logging.getLogger(__name__)

# Source-id attributes of the event and the column each one links on, in linking priority.
SOURCE_ID_FIELDS = (
    "mc_subscriber_id",
    "ghl_contact_id",
    "stripe_customer_id",
    "perspective_contact_id",
    "denefits_contract_code",
)
_ID_MAX = 128  # every source-id column is String(128)
_AD_ID_MAX = 64
_FBP_MAX = 128
_CLICK_MAX = 512
_MAX_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class ContactFacts:
    """What one event says about its person, already hashed and size-checked."""

    source_ids: dict[str, str]
    email_hash: str | None
    phone_hash: str | None
    fbclid: str | None
    fbc: str | None
    seen_at: datetime
    fbp: str | None
    ad_id: str | None
    ctwa_clid: str | None


def _fits(value: str | None, limit: int) -> str | None:
    """The value if the column can hold it; an oversized id is dropped, never truncated."""
    return value if value is not None and len(value) <= limit else None


def _first_hash(key: str, values: list[str], default_country: str | None) -> str | None:
    for value in values:
        digest = hash_field(key, value, default_country=default_country)
        if digest is not None:
            return digest
    return None


def _click(fbclid: str | None, fbc: str | None, seen_at: datetime) -> tuple[str | None, str | None]:
    """The (fbclid, fbc) pair of the event's click, or (None, None) if it is malformed."""
    raw = fbc or fbclid
    if raw is None:
        return None, None
    try:
        built = fbc_from(raw, int(seen_at.timestamp() * 1000))
    except MetaEventValidationError:
        logger.info("dropping a malformed click id (fbc/fbclid) from a contact update")
        return None, None
    if len(built) > 600:
        return None, None
    return built.split(".", 3)[3], built


def extract_facts(event: ConversionEvent, default_country: str | None) -> ContactFacts:
    """Hash and size-check the identity fields of ``event`` (pure: no database)."""
    ids = {
        name: value
        for name in SOURCE_ID_FIELDS
        if (value := _fits(getattr(event.source_ids, name), _ID_MAX)) is not None
    }
    attribution = event.attribution
    seen_at = attribution.click_time or event.event_time
    fbclid, fbc = _click(attribution.fbclid, attribution.fbc, seen_at)
    return ContactFacts(
        source_ids=ids,
        email_hash=_first_hash("em", event.user.emails, default_country),
        phone_hash=_first_hash("ph", event.user.phones, default_country),
        fbclid=fbclid,
        fbc=fbc,
        seen_at=seen_at,
        fbp=_fits(attribution.fbp, _FBP_MAX),
        ad_id=_fits(attribution.ad_id, _AD_ID_MAX),
        ctwa_clid=_fits(event.user.ctwa_clid, _CLICK_MAX),
    )


def _column(name: str) -> InstrumentedAttribute[str | None]:
    column: InstrumentedAttribute[str | None] = getattr(Contact, name)
    return column


def _find(
    session: Session, tenant_id: uuid.UUID, contact_id: uuid.UUID | None, facts: ContactFacts
) -> Contact | None:
    if contact_id is not None:  # our own id, echoed back by the sender (e.g. Stripe metadata)
        found = session.get(Contact, contact_id)
        if found is not None and found.tenant_id == tenant_id:
            return found
    for name, value in facts.source_ids.items():
        found = session.scalar(
            select(Contact).where(Contact.tenant_id == tenant_id, _column(name) == value)
        )
        if found is not None:
            return found
    for name, digest in (("email_hash", facts.email_hash), ("phone_hash", facts.phone_hash)):
        if digest is None:
            continue
        found = session.scalar(
            select(Contact)
            .where(Contact.tenant_id == tenant_id, _column(name) == digest)
            .order_by(Contact.created_at, Contact.id)
            .limit(1)
        )
        if found is not None:
            return found
    return None


def _id_taken(session: Session, contact: Contact, name: str, value: str) -> bool:
    other = session.scalar(
        select(Contact.id).where(
            Contact.tenant_id == contact.tenant_id, _column(name) == value, Contact.id != contact.id
        )
    )
    return other is not None


def _merge(session: Session, contact: Contact, facts: ContactFacts, *, new: bool) -> None:
    """Fill what the contact lacks; replace only what the rules say may change."""
    for name, value in facts.source_ids.items():
        # Never re-point an id: an id already held by another contact stays there.
        if getattr(contact, name) is None and (new or not _id_taken(session, contact, name, value)):
            setattr(contact, name, value)
    # Stored hashes stay the linking keys; a later, different email does not replace them.
    if contact.email_hash is None and facts.email_hash is not None:
        contact.email_hash = facts.email_hash
    if contact.phone_hash is None and facts.phone_hash is not None:
        contact.phone_hash = facts.phone_hash
    if contact.ad_id is None and facts.ad_id is not None:
        contact.ad_id = facts.ad_id  # first touch
    if facts.fbc is not None and facts.fbclid != contact.fbclid:
        # A click not seen before (the first, or a newer ad click): its first sighting is now.
        contact.fbclid = facts.fbclid
        contact.fbc = facts.fbc
        contact.fbc_first_seen_at = facts.seen_at
    if facts.fbp is not None:
        contact.fbp = facts.fbp
    if facts.ctwa_clid is not None:
        contact.ctwa_clid = facts.ctwa_clid


def record_contact(
    session: Session, event: ConversionEvent, default_country: str | None
) -> uuid.UUID:
    """Find or create the event's contact, merge the event's facts into it, return its id.

    Flushes but does not commit. Two requests creating the same person at once race on the
    unique source-id constraints; the loser rolls ``session`` back and re-reads, so give this
    call a session of its own.
    """
    facts = extract_facts(event, default_country)
    for attempt in range(1, _MAX_ATTEMPTS + 1):
        try:
            contact = _find(session, event.tenant_id, event.contact_id, facts)
            new = contact is None
            if contact is None:
                contact = Contact(id=uuid.uuid4(), tenant_id=event.tenant_id)
                session.add(contact)
            _merge(session, contact, facts, new=new)
            session.flush()
            return contact.id
        except IntegrityError:
            session.rollback()
            if attempt == _MAX_ATTEMPTS:
                raise
            logger.info("contact insert raced with another request; re-reading")
    raise AssertionError("unreachable")
