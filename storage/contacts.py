"""Repository of ``contacts``: find-or-create one person per tenant and merge what we learn.

Identity is linked on our own contact id when a sender echoes it back, then on the sources'
stable ids, then on the hashed email, then on the hashed phone (reference section 6: never
on a name). Merging never loses anything: a value already stored is never replaced by a null
or an absent one (MCB's bug 2.4), ``ad_id`` is first-touch, and the ``fbc`` of a click keeps
the time that click was *first* seen; a different click replaces it only if it was seen
later (a retried old event must not bring back an old click).

``record_contacts`` does a whole batch in one transaction: one ``IN`` query per linking
column loads every candidate row, then the events are linked and merged in order against an
in-memory index, so a person created by one event is found by the next one of the batch.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from capi_stream.event import ConversionEvent
from storage.contact_facts import SOURCE_ID_FIELDS, ContactFacts, as_utc, extract_facts
from storage.models import Contact

__all__ = [
    "ContactFacts",
    "EventKey",
    "LinkedContact",
    "extract_facts",
    "record_contact",
    "record_contacts",
]

logger = logging.getLogger(__name__)

_HASH_FIELDS = ("email_hash", "phone_hash")
_MAX_ATTEMPTS = 3

# (tenant_id, column name, value): a linking key of the in-memory index.
_Key = tuple[uuid.UUID, str, str]
# (tenant_id, event_id): an event_id is unique only within its tenant.
EventKey = tuple[uuid.UUID, str]


@dataclass(frozen=True, slots=True)
class LinkedContact:
    """The contact of one event as it was right after that event was merged into it."""

    contact_id: uuid.UUID
    fbc: str | None
    fbp: str | None
    ad_id: str | None
    ctwa_clid: str | None
    fbclid: str | None
    fbc_first_seen_at: datetime | None


def _column(name: str) -> InstrumentedAttribute[str | None]:
    column: InstrumentedAttribute[str | None] = getattr(Contact, name)
    return column


def _snapshot(contact: Contact) -> LinkedContact:
    seen = contact.fbc_first_seen_at
    return LinkedContact(
        contact.id, contact.fbc, contact.fbp, contact.ad_id, contact.ctwa_clid, contact.fbclid,
        as_utc(seen) if seen is not None else None,
    )  # fmt: skip


class _Index:
    """The batch's candidate contacts by id and by every linking key, kept current as it merges.

    Source ids are unique per tenant; a hash may be shared, and then the oldest contact wins
    (stored ones by ``created_at, id`` as the single-row query did, new ones after them).
    """

    def __init__(self, loaded: Iterable[Contact]) -> None:
        self.by_id: dict[uuid.UUID, Contact] = {}
        self._by_key: dict[_Key, list[Contact]] = {}
        for contact in sorted(loaded, key=lambda c: (c.created_at, str(c.id))):
            self.add(contact)

    def add(self, contact: Contact) -> None:
        self.by_id[contact.id] = contact
        for name in (*SOURCE_ID_FIELDS, *_HASH_FIELDS):
            value = getattr(contact, name)
            if value is not None:
                self.link(contact, name, value)

    def link(self, contact: Contact, name: str, value: str) -> None:
        holders = self._by_key.setdefault((contact.tenant_id, name, value), [])
        if contact not in holders:
            holders.append(contact)

    def first(self, tenant_id: uuid.UUID, name: str, value: str) -> Contact | None:
        holders = self._by_key.get((tenant_id, name, value))
        return holders[0] if holders else None

    def find(
        self, tenant_id: uuid.UUID, contact_id: uuid.UUID | None, facts: ContactFacts
    ) -> Contact | None:
        if contact_id is not None:  # our own id, echoed back by the sender (Stripe metadata)
            found = self.by_id.get(contact_id)
            if found is not None and found.tenant_id == tenant_id:
                return found
        for name, value in facts.source_ids.items():
            if (found := self.first(tenant_id, name, value)) is not None:
                return found
        for name, digest in (("email_hash", facts.email_hash), ("phone_hash", facts.phone_hash)):
            if digest is not None and (found := self.first(tenant_id, name, digest)) is not None:
                return found
        return None


def _load(session: Session, pairs: Sequence[tuple[ConversionEvent, ContactFacts]]) -> _Index:
    """Every stored contact any event of the batch could link to: one query per column."""
    tenants = {event.tenant_id for event, _ in pairs}
    wanted: dict[str, set[str]] = {}
    ids: set[uuid.UUID] = set()
    for event, facts in pairs:
        if event.contact_id is not None:
            ids.add(event.contact_id)
        for name, value in facts.source_ids.items():
            wanted.setdefault(name, set()).add(value)
        for name in _HASH_FIELDS:
            if (digest := getattr(facts, name)) is not None:
                wanted.setdefault(name, set()).add(digest)
    loaded: dict[uuid.UUID, Contact] = {}
    if ids:
        query = select(Contact).where(Contact.id.in_(sorted(ids)))
        loaded.update((c.id, c) for c in session.scalars(query) if c.tenant_id in tenants)
    for name, values in wanted.items():
        query = select(Contact).where(
            Contact.tenant_id.in_(sorted(tenants)), _column(name).in_(sorted(values))
        )
        loaded.update((c.id, c) for c in session.scalars(query))
    return _Index(loaded.values())


def _merge(index: _Index, contact: Contact, facts: ContactFacts) -> None:
    """Fill what the contact lacks; replace only what the rules say may change."""
    for name, value in facts.source_ids.items():
        # Never re-point an id: an id already held by another contact stays there.
        holder = index.first(contact.tenant_id, name, value)
        if getattr(contact, name) is None and holder in (None, contact):
            setattr(contact, name, value)
            index.link(contact, name, value)
    # Stored hashes stay the linking keys; a later, different email does not replace them.
    for name in _HASH_FIELDS:
        digest = getattr(facts, name)
        if getattr(contact, name) is None and digest is not None:
            setattr(contact, name, digest)
            index.link(contact, name, digest)
    if contact.ad_id is None and facts.ad_id is not None:
        contact.ad_id = facts.ad_id  # first touch
    if facts.fbc is not None and facts.fbclid != contact.fbclid:
        stored = contact.fbc_first_seen_at
        if contact.fbclid is None or stored is None or facts.seen_at >= as_utc(stored):
            # A click not seen before (the first, or a newer ad click): first seen now.
            contact.fbclid = facts.fbclid
            contact.fbc = facts.fbc
            contact.fbc_first_seen_at = facts.seen_at
    if facts.fbp is not None:
        contact.fbp = facts.fbp
    if facts.ctwa_clid is not None:
        contact.ctwa_clid = facts.ctwa_clid


def _link_all(
    session: Session, pairs: Sequence[tuple[ConversionEvent, ContactFacts]]
) -> dict[EventKey, LinkedContact]:
    index = _load(session, pairs)
    linked: dict[EventKey, LinkedContact] = {}
    for event, facts in pairs:
        contact = index.find(event.tenant_id, event.contact_id, facts)
        if contact is None:
            contact = Contact(id=uuid.uuid4(), tenant_id=event.tenant_id)
            session.add(contact)
            index.add(contact)
        _merge(index, contact, facts)
        linked[(event.tenant_id, event.event_id)] = _snapshot(contact)
    session.flush()
    return linked


def record_contacts(
    session: Session,
    events: Sequence[ConversionEvent],
    default_country_by_tenant: Mapping[uuid.UUID, str | None],
) -> dict[EventKey, LinkedContact]:
    """Link every event to its contact (found or created), merge its facts, in order.

    Returns each event's contact by ``(tenant_id, event_id)``. An event naming nobody (no
    contact id, no source id, no usable email or phone) is left out: nothing could ever find
    that contact again. Flushes but does not commit. A concurrent writer creating the same
    person first makes the flush fail on a unique source id; ``session`` is then rolled back
    and the batch re-read and redone, so give this call a session of its own.

    Raises:
        IntegrityError: still conflicting after a few attempts.
    """
    pairs = [
        (event, facts)
        for event in events
        if (facts := extract_facts(event, default_country_by_tenant.get(event.tenant_id))).links
        or event.contact_id is not None
    ]
    if not pairs:
        return {}
    for attempt in range(1, _MAX_ATTEMPTS + 1):
        try:
            return _link_all(session, pairs)
        except IntegrityError:
            session.rollback()
            if attempt == _MAX_ATTEMPTS:
                raise
            logger.info("contact insert raced with another writer; re-reading the batch")
    raise AssertionError("unreachable")


def record_contact(
    session: Session, event: ConversionEvent, default_country: str | None
) -> uuid.UUID | None:
    """``record_contacts`` for one event: its contact id (None when it names nobody)."""
    linked = record_contacts(session, [event], {event.tenant_id: default_country})
    found = linked.get((event.tenant_id, event.event_id))
    return found.contact_id if found is not None else None
