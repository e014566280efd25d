"""Repository of ``contacts``: find-or-create one person per tenant and merge what we learn.

Identity is linked on our own contact id when a sender echoes it back, then on the sources'
stable ids, then on the hashed email, then on the hashed phone (never on a name: names are
shared by strangers). Merging never loses anything: a value already stored is never replaced
by a null or an absent one (a later webhook without the email must not erase it),
``ad_id`` is first-touch, and the ``fbc`` of a click keeps the time that click was *first*
seen; a different click replaces it only if it was seen later (a retried old event must not
bring back an old click).

``record_contacts`` does a whole batch in one transaction: one query per linking column
(on PostgreSQL all of them in one statement of index lookups, ``_pg_lookup``) loads every
candidate row,
then the events are linked and merged in order against an in-memory index, so a person
created by one event is found by the next one of the batch. It works on Core rows and
plain objects, not ORM instances: this step sees every event the worker handles, and ORM
construction, attribute events and the unit of work cost several times the CPU. It ends
with one INSERT of the new contacts and one UPDATE of the changed ones, which writes only
the columns the batch changed and bumps ``updated_at``.
"""

from __future__ import annotations

import logging
import operator
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple, cast

import orjson
from sqlalchemy import (
    Connection,
    Table,
    TextClause,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from capi_stream.event import SOURCE_ID_FIELDS, EventKey
from storage.ids import random_uuids
from storage.models import Contact

__all__ = [
    "ContactFacts",
    "EventKey",
    "LinkedContact",
    "as_utc",
    "record_contacts",
]

logger = logging.getLogger(__name__)

_TABLE = cast(Table, Contact.__table__)
_HASH_FIELDS = ("email_hash", "phone_hash")
_LINK_FIELDS = (*SOURCE_ID_FIELDS, *_HASH_FIELDS)
_MAX_ATTEMPTS = 3

# (tenant_id.int, column name, value): a linking key of the in-memory index. The tenant as
# its int: a UUID hashes in Python, several times per event.
_Key = tuple[int, str, str]


class ContactFacts(NamedTuple):
    """What one event says about its person, already hashed and size-checked.

    ``tenant_id``/``event_id`` name the event; ``contact_id`` is the contact id the sender
    echoed back, if any; ``seen_at`` is when the click (``fbc``) was seen, None without one.
    The pipeline builds these (``consumers.pipeline.contact_facts``). A NamedTuple, like
    ``LinkedContact``: one is built per event, and a frozen dataclass's ``__init__`` costs
    an ``object.__setattr__`` per field.
    """

    tenant_id: uuid.UUID
    event_id: str
    contact_id: uuid.UUID | None
    source_ids: dict[str, str]
    email_hash: str | None
    phone_hash: str | None
    fbclid: str | None
    fbc: str | None
    seen_at: datetime | None
    fbp: str | None
    ad_id: str | None
    ctwa_clid: str | None

    @property
    def links(self) -> bool:
        """True when something here can find this person again (an id or a hash)."""
        return bool(self.source_ids or self.email_hash or self.phone_hash)


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; SQLite hands back naive values, which are stored as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class LinkedContact(NamedTuple):
    """The contact of one event as it was right after that event was merged into it.

    Also what enrichment reads (``consumers.pipeline.enrich.ContactHints``): one object per
    event from the merge to ``prepare_event``, not a copy per layer.
    """

    contact_id: uuid.UUID
    fbc: str | None = None
    fbp: str | None = None
    ad_id: str | None = None
    ctwa_clid: str | None = None
    fbclid: str | None = None
    fbc_first_seen_at: datetime | None = None


@dataclass(slots=True, eq=False)
class _Person:
    """One ``contacts`` row while the batch merges into it: plain attributes, no ORM state."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    mc_subscriber_id: str | None = None
    ghl_contact_id: str | None = None
    stripe_customer_id: str | None = None
    perspective_contact_id: str | None = None
    denefits_contract_code: str | None = None
    email_hash: str | None = None
    phone_hash: str | None = None
    fbclid: str | None = None
    fbc: str | None = None
    fbc_first_seen_at: datetime | None = None
    fbp: str | None = None
    ad_id: str | None = None
    ctwa_clid: str | None = None
    # Not a column: the columns to UPDATE of a stored row (``_load`` sets it), None while the
    # row is still to be inserted whole.
    _changed: set[str] | None = field(default=None, init=False)

    def assign(self, name: str, value: object) -> None:
        setattr(self, name, value)
        if self._changed is not None:
            self._changed.add(name)

    def snapshot(self) -> LinkedContact:
        return LinkedContact(
            self.id,
            self.fbc,
            self.fbp,
            self.ad_id,
            self.ctwa_clid,
            self.fbclid,
            self.fbc_first_seen_at,
        )


# The row's columns, in the order ``_Person`` takes them.
_COLUMNS = tuple(f.name for f in fields(_Person) if f.init)
assert _COLUMNS[2:7] == SOURCE_ID_FIELDS
_NO_SOURCE_IDS = (None, None, None, None, None)
_SELECT = select(*(_TABLE.c[name] for name in _COLUMNS), _TABLE.c.created_at)


# Merges never write a null, so ``COALESCE(new, stored)`` changes exactly the changed columns
# and one UPDATE serves every touched contact, whatever it changed.
_MERGED = _COLUMNS[2:]
_UPDATE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("row_id"))
    .values(
        {
            name: func.coalesce(bindparam(f"v_{name}", type_=_TABLE.c[name].type), _TABLE.c[name])
            for name in _MERGED
        }
    )
)  # updated_at: set by its onupdate
# PostgreSQL takes the batch as one JSON parameter per statement: executemany costs psycopg
# and SQLAlchemy a parameter set per row. In the UPDATE's objects, a column a row leaves out
# (or nulls) reads as null; keys that are not columns are ignored.
_PG_ROWS = f"json_populate_recordset(NULL::{_TABLE.name}, CAST(:rows AS json))"
# New rows go as arrays of their column values: orjson writes a list of tuples at a third of
# the cost of the same rows as dataclass objects. Text columns take ``->>``'s text as it is
# (their length still checked on assignment); the others are cast to their column's type.
_row_of = operator.attrgetter(*_COLUMNS)
_PG_CASTS = {"id": "uuid", "tenant_id": "uuid", "fbc_first_seen_at": "timestamptz"}
_PG_VALUES = ", ".join(
    f"CAST(r->>{i} AS {_PG_CASTS[name]})" if name in _PG_CASTS else f"r->>{i}"
    for i, name in enumerate(_COLUMNS)
)
_PG_INSERT = text(
    f"INSERT INTO {_TABLE.name} ({', '.join(_COLUMNS)}) SELECT {_PG_VALUES} "  # noqa: S608 - the table's own names; values bound
    "FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS r"
)
_PG_UPDATE = text(
    f"UPDATE {_TABLE.name} AS t SET "  # noqa: S608 - the table's own names; values bound
    + ", ".join(f"{name} = COALESCE(v.{name}, t.{name})" for name in _MERGED)
    + f", updated_at = now() FROM {_PG_ROWS} AS v WHERE t.id = v.id"
)


class _Index:
    """The batch's candidate contacts by id and by every linking key, kept current as it merges.

    Source ids are unique per tenant; a hash may be shared, and then the oldest contact wins
    (stored ones by ``created_at, id`` as the single-row query did, new ones after them), so
    a key keeps the first contact linked to it.
    """

    def __init__(self, loaded: Iterable[_Person]) -> None:
        self.by_id: dict[int, _Person] = {}  # by the id's int, as _Key
        self._first: dict[_Key, _Person] = {}
        for person in loaded:
            self.add(person)

    def add(self, person: _Person) -> None:
        self.by_id[person.id.int] = person
        for name in _LINK_FIELDS:
            value = getattr(person, name)
            if value is not None:
                self.link(person, name, value)

    def link(self, person: _Person, name: str, value: str) -> None:
        self._first.setdefault((person.tenant_id.int, name, value), person)

    def first(self, tenant_id: uuid.UUID, name: str, value: str) -> _Person | None:
        return self._first.get((tenant_id.int, name, value))

    def find(self, facts: ContactFacts) -> _Person | None:
        tenant = facts.tenant_id.int
        contact_id = facts.contact_id
        if contact_id is not None:  # our own id, echoed back by the sender (Stripe metadata)
            found = self.by_id.get(contact_id.int)
            if found is not None and found.tenant_id.int == tenant:
                return found
        first = self._first.get
        for name, value in facts.source_ids.items():
            if (found := first((tenant, name, value))) is not None:
                return found
        for name, digest in (("email_hash", facts.email_hash), ("phone_hash", facts.phone_hash)):
            if digest is not None and (found := first((tenant, name, digest))) is not None:
                return found
        return None


@lru_cache(maxsize=64)
def _pg_lookup(names: tuple[str, ...]) -> TextClause:
    """PostgreSQL: the contacts holding any of the batch's (tenant, value) pairs, per column.

    One UNION ALL: one statement and round trip for every column. Each column's pairs are
    one JSON array parameter, which orjson writes in C (psycopg adapts an array value by
    value in Python). Each pair is looked up through the column's (tenant_id, column) index:
    ``LATERAL`` with ``OFFSET 0`` keeps the planner from flattening the lookup into a join,
    which it turned into a scan of every contact of the batch's tenants hashed against the
    values (91 ms per 250-event chunk at 200,000 contacts, growing with the table; this is
    3 ms and does not grow). ``jsonb`` parses the array once, so ``->>`` is cheap per pair.
    """
    columns = ", ".join((*_COLUMNS, "created_at"))
    branches = []
    for name in names:
        column = _TABLE.c[name].name
        value = "CAST(p->>1 AS uuid)" if column == "id" else "p->>1"
        branches.append(
            f"SELECT c.* FROM jsonb_array_elements(CAST(:{column} AS jsonb)) AS p "  # noqa: S608 - the table's own names; values bound
            f"CROSS JOIN LATERAL (SELECT {columns} FROM {_TABLE.name} "
            f"WHERE tenant_id = CAST(p->>0 AS uuid) AND {column} = {value} OFFSET 0) AS c"
        )
    return text(" UNION ALL ".join(branches))


def _wanted(batch: Sequence[ContactFacts]) -> dict[str, dict[tuple[int, Any], tuple[Any, Any]]]:
    """Per linking column, the batch's (tenant, value) pairs, each once (keyed by ints)."""
    wanted: dict[str, dict[tuple[int, Any], tuple[Any, Any]]] = {}
    for facts in batch:
        tenant = facts.tenant_id
        pairs: list[tuple[str, Any]] = [*facts.source_ids.items()]
        if facts.contact_id is not None:
            pairs.append(("id", facts.contact_id))
        if facts.email_hash is not None:
            pairs.append(("email_hash", facts.email_hash))
        if facts.phone_hash is not None:
            pairs.append(("phone_hash", facts.phone_hash))
        for name, value in pairs:
            wanted.setdefault(name, {})[(tenant.int, value)] = (tenant, value)
    return wanted


def _load(connection: Connection, batch: Sequence[ContactFacts]) -> _Index:
    """Every stored contact any event of the batch could link to, by every linking column."""
    wanted = _wanted(batch)
    if connection.dialect.name == "postgresql":
        params = {name: orjson.dumps([*pairs.values()]).decode() for name, pairs in wanted.items()}
        results = [connection.execute(_pg_lookup(tuple(wanted)), params)] if wanted else []
    else:  # one query per column: SQLite's bound-parameter limit is per statement
        tenants = sorted({facts.tenant_id.int: facts.tenant_id for facts in batch}.values())
        results = [
            connection.execute(
                _SELECT.where(
                    _TABLE.c.tenant_id.in_(tenants),
                    _TABLE.c[name].in_(sorted({value for _, value in pairs.values()})),
                )
            )
            for name, pairs in wanted.items()
        ]
    rows: dict[uuid.UUID, Any] = {}  # Core rows; a contact found by several columns once
    for result in results:
        rows.update((row.id, row) for row in result)
    loaded = []
    for row in sorted(rows.values(), key=lambda r: (r.created_at, str(r.id))):
        person = _Person(*row[:-1])
        person._changed = set()
        if person.fbc_first_seen_at is not None:
            person.fbc_first_seen_at = as_utc(person.fbc_first_seen_at)
        loaded.append(person)
    return _Index(loaded)


def _merge(index: _Index, person: _Person, facts: ContactFacts) -> None:
    """Fill what the contact lacks; replace only what the rules say may change."""
    for name, value in facts.source_ids.items():
        # Never re-point an id: an id already held by another contact stays there.
        holder = index.first(person.tenant_id, name, value)
        if getattr(person, name) is None and holder in (None, person):
            person.assign(name, value)
            index.link(person, name, value)
    # Stored hashes stay the linking keys; a later, different email does not replace them.
    for name in _HASH_FIELDS:
        digest = getattr(facts, name)
        if getattr(person, name) is None and digest is not None:
            person.assign(name, digest)
            index.link(person, name, digest)
    if person.ad_id is None and facts.ad_id is not None:
        person.assign("ad_id", facts.ad_id)  # first touch
    seen_at = facts.seen_at
    if facts.fbc is not None and seen_at is not None and facts.fbclid != person.fbclid:
        stored = person.fbc_first_seen_at
        if person.fbclid is None or stored is None or seen_at >= stored:
            # A click not seen before (the first, or a newer ad click): first seen now.
            person.assign("fbclid", facts.fbclid)
            person.assign("fbc", facts.fbc)
            person.assign("fbc_first_seen_at", seen_at)
    if facts.fbp is not None and facts.fbp != person.fbp:
        person.assign("fbp", facts.fbp)
    if facts.ctwa_clid is not None and facts.ctwa_clid != person.ctwa_clid:
        person.assign("ctwa_clid", facts.ctwa_clid)


def _create(index: _Index, contact_id: uuid.UUID, facts: ContactFacts) -> _Person:
    """A new contact holding ``facts``: what ``_merge`` makes of an empty one, built at once.

    ``find`` linked none of the facts' keys to anybody, so every one of them is this
    contact's; without a click, ``fbclid``, ``fbc`` and ``seen_at`` are all None.
    """
    person = _Person(
        contact_id,
        facts.tenant_id,
        *_NO_SOURCE_IDS,  # set below: positional arguments cost less than keywords
        facts.email_hash,
        facts.phone_hash,
        facts.fbclid,
        facts.fbc,
        facts.seen_at,
        facts.fbp,
        facts.ad_id,
        facts.ctwa_clid,
    )
    index.by_id[contact_id.int] = person
    for name, value in facts.source_ids.items():
        setattr(person, name, value)
        index.link(person, name, value)
    if facts.email_hash is not None:
        index.link(person, "email_hash", facts.email_hash)
    if facts.phone_hash is not None:
        index.link(person, "phone_hash", facts.phone_hash)
    return person


def _write(connection: Connection, people: Collection[_Person]) -> None:
    """One INSERT of the new contacts and one UPDATE of the stored ones that changed."""
    new = [p for p in people if p._changed is None]
    changed = [(p, columns) for p in people if (columns := p._changed)]
    if connection.dialect.name == "postgresql":
        # orjson writes UUIDs and datetimes as text that PostgreSQL reads back exactly.
        if new:
            rows = orjson.dumps([_row_of(p) for p in new]).decode()
            connection.execute(_PG_INSERT, {"rows": rows})
        if changed:
            updated = [
                {"id": p.id, **{name: getattr(p, name) for name in columns}}
                for p, columns in changed
            ]
            connection.execute(_PG_UPDATE, {"rows": orjson.dumps(updated).decode()})
        return
    created = [{name: getattr(p, name) for name in _COLUMNS} for p in new]
    if created:
        connection.execute(insert(_TABLE), created)
    if changed:
        unchanged = {f"v_{name}": None for name in _MERGED}
        params = [
            {**unchanged, "row_id": p.id, **{f"v_{name}": getattr(p, name) for name in columns}}
            for p, columns in changed
        ]
        connection.execute(_UPDATE, params)


def _link_all(
    connection: Connection, batch: Sequence[ContactFacts]
) -> dict[EventKey, LinkedContact]:
    index = _load(connection, batch)
    linked: dict[EventKey, LinkedContact] = {}
    ids = random_uuids()
    for facts in batch:
        person = index.find(facts)
        if person is None:
            person = _create(index, next(ids), facts)
        else:
            _merge(index, person, facts)
        linked[(facts.tenant_id, facts.event_id)] = person.snapshot()
    _write(connection, index.by_id.values())
    return linked


def record_contacts(
    session: Session, batch: Sequence[ContactFacts]
) -> dict[EventKey, LinkedContact]:
    """Link every event's facts to its contact (found or created) and merge them, in order.

    Returns each event's contact by ``(tenant_id, event_id)``. Facts naming nobody (no
    contact id, no source id, no email or phone hash) are left out: nothing could ever find
    that contact again. Writes through the session's connection but does not commit. A
    concurrent writer creating the same person first makes the write fail on a unique source
    id; ``session`` is then rolled back and the batch re-read and redone, so give this call a
    session of its own.

    Raises:
        IntegrityError: still conflicting after a few attempts.
    """
    linkable = [facts for facts in batch if facts.links or facts.contact_id is not None]
    if not linkable:
        return {}
    for attempt in range(1, _MAX_ATTEMPTS + 1):
        try:
            return _link_all(session.connection(), linkable)
        except IntegrityError:
            session.rollback()
            if attempt == _MAX_ATTEMPTS:
                raise
            logger.info("contact insert raced with another writer; re-reading the batch")
    raise AssertionError("unreachable")
