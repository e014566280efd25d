"""``storage.contacts`` on SQLite and PostgreSQL: linking, the merge rules, batches, races."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.event import ConversionEvent
from consumers.pipeline.contacts import link_events
from meta_capi.hashing import hash_field
from storage.contacts import LinkedContact, as_utc
from storage.models import Contact
from storage.tenants import upsert_tenant

NOW = datetime.now(UTC).replace(microsecond=0)
EMAIL = "jane@example.com"
PHONE = "+1 650 555 1212"


@pytest.fixture
def tenant(session_factory: sessionmaker[Session]) -> uuid.UUID:
    tenant_id = uuid.uuid4()
    with session_factory.begin() as session:
        upsert_tenant(session, tenant_id, "contacts test", "US")
    return tenant_id


def make_event(tenant: uuid.UUID, n: int, **fields: Any) -> ConversionEvent:
    fields.setdefault("event_time", NOW)
    return ConversionEvent.create(
        tenant_id=tenant,
        source="api",
        source_event_id=f"e{n}",
        event_name="Lead",
        action_source="chat",
        **fields,
    )


def record(
    sessions: sessionmaker[Session], events: Sequence[ConversionEvent], country: str | None = "US"
) -> dict[str, LinkedContact]:
    """Each event's contact by its ``source_event_id`` (``e1``, ``e2``...)."""
    with sessions() as session:
        linked = link_events(session, events, {e.tenant_id: country for e in events})
        session.commit()
    return {
        e.source_event_id: linked[(e.tenant_id, e.event_id)]
        for e in events
        if (e.tenant_id, e.event_id) in linked
    }


def contacts_of(sessions: sessionmaker[Session], tenant: uuid.UUID) -> list[Contact]:
    with sessions() as session:
        return list(session.scalars(select(Contact).where(Contact.tenant_id == tenant)))


def utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=UTC)  # SQLite returns naive UTC


def test_a_later_event_with_nulls_never_erases_and_ad_id_is_first_touch(
    session_factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    first = make_event(
        tenant,
        1,
        user={"emails": [EMAIL], "phones": [PHONE], "ctwa_clid": "ctwa-1"},
        source_ids={"mc_subscriber_id": "777"},
        attribution={"fbclid": "IwAR_ONE", "fbp": "fb.1.1.1", "ad_id": "ad-first"},
    )
    bare = make_event(
        tenant, 2, source_ids={"mc_subscriber_id": "777"}, attribution={"ad_id": "ad-later"}
    )
    linked = record(session_factory, [first])
    linked |= record(session_factory, [bare])

    assert linked["e1"].contact_id == linked["e2"].contact_id
    [contact] = contacts_of(session_factory, tenant)
    assert contact.email_hash == hash_field("em", EMAIL)
    assert contact.phone_hash == hash_field("ph", PHONE, default_country="US")
    assert contact.mc_subscriber_id == "777"
    assert (contact.fbclid, contact.fbc) == (
        "IwAR_ONE",
        f"fb.1.{int(NOW.timestamp() * 1000)}.IwAR_ONE",
    )
    assert (contact.fbp, contact.ctwa_clid, contact.ad_id) == ("fb.1.1.1", "ctwa-1", "ad-first")
    assert linked["e2"].fbc == contact.fbc  # what enrichment of the bare event starts from


def test_the_same_click_keeps_its_first_seen_time_and_only_a_newer_click_replaces_it(
    session_factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    seen = NOW - timedelta(hours=3)
    user = {"emails": [EMAIL]}
    record(
        session_factory,
        [make_event(tenant, 1, user=user, event_time=seen, attribution={"fbclid": "IwAR_A"})],
    )
    again = make_event(tenant, 2, user=user, event_time=NOW, attribution={"fbclid": "IwAR_A"})
    # A retried old event with an older, different click must not bring that click back.
    older = make_event(
        tenant,
        3,
        user=user,
        event_time=seen - timedelta(hours=1),
        attribution={"fbclid": "IwAR_OLD"},
    )
    record(session_factory, [again, older])
    [contact] = contacts_of(session_factory, tenant)
    assert contact.fbc == f"fb.1.{int(seen.timestamp() * 1000)}.IwAR_A"
    assert utc(contact.fbc_first_seen_at) == seen

    newer = make_event(tenant, 4, user=user, event_time=NOW, attribution={"fbclid": "IwAR_B"})
    record(session_factory, [newer])
    [contact] = contacts_of(session_factory, tenant)
    assert contact.fbc == f"fb.1.{int(NOW.timestamp() * 1000)}.IwAR_B"
    assert utc(contact.fbc_first_seen_at) == NOW


def test_a_click_time_is_stored_exactly_whatever_its_offset(
    session_factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    seen = datetime(2026, 12, 1, 14, 30, 15, 123000, tzinfo=timezone(timedelta(hours=2)))
    event = make_event(
        tenant, 1, user={"emails": [EMAIL]}, event_time=seen, attribution={"fbclid": "IwAR_A"}
    )
    linked = record(session_factory, [event])["e1"]
    [contact] = contacts_of(session_factory, tenant)
    assert utc(contact.fbc_first_seen_at) == linked.fbc_first_seen_at == seen
    assert contact.id == linked.contact_id and contact.id.version == 4


def test_one_batch_links_in_order_and_snapshots_each_event(
    session_factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    early = NOW - timedelta(hours=2)
    events = [
        make_event(
            tenant, 1, user={"emails": [EMAIL]}, event_time=early, attribution={"fbclid": "IwAR_A"}
        ),
        make_event(
            tenant,
            2,
            source_ids={"stripe_customer_id": "cus_1"},
            user={"emails": [" JANE@example.com "]},
        ),
        make_event(
            tenant, 3, source_ids={"stripe_customer_id": "cus_1"}, attribution={"fbclid": "IwAR_B"}
        ),
        make_event(tenant, 4, user={"phones": [PHONE]}),  # nobody known by this phone yet
        make_event(tenant, 5, user={"emails": ["other@example.com"], "phones": [PHONE]}),
    ]
    linked = record(session_factory, events)

    jane = linked["e1"].contact_id
    assert linked["e2"].contact_id == linked["e3"].contact_id == jane
    assert linked["e2"].fbclid == "IwAR_A"  # as it was after event 2, not after event 3
    assert linked["e3"].fbclid == "IwAR_B"
    assert linked["e4"].contact_id == linked["e5"].contact_id != jane
    by_id = {c.id: c for c in contacts_of(session_factory, tenant)}
    assert len(by_id) == 2
    assert by_id[jane].stripe_customer_id == "cus_1"
    assert by_id[linked["e5"].contact_id].email_hash == hash_field("em", "other@example.com")


def test_source_ids_link_first_and_are_never_re_pointed(
    session_factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    first = make_event(
        tenant, 1, user={"emails": ["a@example.com"]}, source_ids={"ghl_contact_id": "g1"}
    )
    a = record(session_factory, [first])["e1"]
    b = record(session_factory, [make_event(tenant, 2, user={"emails": ["b@example.com"]})])["e2"]
    # Our own id echoed back for b, carrying a's GHL id: b is updated, g1 stays with a.
    echoed = make_event(tenant, 3, contact_id=b.contact_id, source_ids={"ghl_contact_id": "g1"})
    by_ghl = make_event(
        tenant, 4, user={"emails": ["b@example.com"]}, source_ids={"ghl_contact_id": "g1"}
    )
    linked = record(session_factory, [echoed, by_ghl])
    assert linked["e3"].contact_id == b.contact_id
    assert linked["e4"].contact_id == a.contact_id  # the source id wins over the email
    by_id = {c.id: c for c in contacts_of(session_factory, tenant)}
    assert by_id[a.contact_id].ghl_contact_id == "g1"
    assert by_id[b.contact_id].ghl_contact_id is None


def test_tenants_are_isolated_and_nobody_is_not_recorded(
    session_factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    other = uuid.uuid4()
    with session_factory.begin() as session:
        upsert_tenant(session, other, "other", None)
    mine = record(session_factory, [make_event(tenant, 1, user={"emails": [EMAIL]})])["e1"]
    theirs = make_event(other, 1, user={"emails": [EMAIL]})
    # Another tenant's contact id in an event is not followed.
    foreign = make_event(other, 2, contact_id=mine.contact_id, source_ids={"mc_subscriber_id": "9"})
    nobody = make_event(tenant, 3, user={"first_name": "Jane"}, attribution={"fbclid": "IwAR_X"})
    with session_factory() as session:
        linked = link_events(session, [theirs, foreign, nobody], {other: None, tenant: "US"})
        session.commit()
    assert linked[(other, theirs.event_id)].contact_id != mine.contact_id
    assert linked[(other, foreign.event_id)].contact_id not in (None, mine.contact_id)
    assert (tenant, nobody.event_id) not in linked
    assert len(contacts_of(session_factory, tenant)) == 1


def test_a_batch_costs_a_few_queries_whatever_its_size(
    db_engine: Engine, session_factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    def count_selects(events: list[ConversionEvent]) -> int:
        statements: list[str] = []

        def before(*args: Any) -> None:
            statements.append(str(args[2]))

        event.listen(db_engine, "before_cursor_execute", before)
        try:
            record(session_factory, events)
        finally:
            event.remove(db_engine, "before_cursor_execute", before)
        return sum(1 for s in statements if s.lstrip().upper().startswith("SELECT"))

    def batch(start: int, size: int) -> list[ConversionEvent]:
        return [
            make_event(
                tenant,
                n,
                user={"emails": [f"p{n}@example.com"], "phones": [PHONE]},
                source_ids={"mc_subscriber_id": f"m{n}"},
            )
            for n in range(start, start + size)
        ]

    selects = count_selects(batch(0, 5))
    assert selects == count_selects(batch(100, 200)) <= 4
    if db_engine.dialect.name == "postgresql":
        assert selects == 1  # every linking column in one round trip


def test_concurrent_first_inserts_of_one_contact_do_not_fail(
    session_factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    lead = make_event(
        tenant, 1, user={"emails": ["race@example.com"]}, source_ids={"mc_subscriber_id": "race"}
    )
    results: list[uuid.UUID | None] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def work() -> None:
        try:
            with session_factory() as session:
                barrier.wait()
                linked = link_events(session, [lead], {lead.tenant_id: "US"})
                contact_id = linked[(lead.tenant_id, lead.event_id)].contact_id
                session.commit()
                results.append(contact_id)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(results) == 6 and len(set(results)) == 1 and None not in results
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 1


@contextmanager
def before_first(engine: Engine, prefix: str, action: Callable[[], None]) -> Iterator[list[str]]:
    """Run ``action`` once, just before the first statement starting with ``prefix``."""
    seen: list[str] = []

    def before(*args: Any) -> None:
        if not seen and str(args[2]).lstrip().upper().startswith(prefix):
            seen.append(str(args[2]))
            action()

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_one_batch_creates_and_updates_and_merges_a_person_seen_twice(
    db_engine: Engine, session_factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    early = NOW - timedelta(hours=1)
    stored = record(
        session_factory,
        [
            make_event(
                tenant, 1, user={"emails": ["a@example.com"]}, attribution={"ad_id": "ad-a"}
            ),
            make_event(tenant, 2, user={"emails": ["idle@example.com"]}),
        ],
    )
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    with db_engine.begin() as connection:
        connection.execute(update(Contact).values(updated_at=long_ago))
    events = [
        make_event(
            tenant,
            3,
            user={"emails": ["a@example.com"]},
            attribution={"fbp": "fb.1.1.1", "ad_id": "ad-later"},
        ),
        make_event(
            tenant,
            4,
            source_ids={"stripe_customer_id": "cus_b"},
            event_time=early,
            attribution={"fbclid": "IwAR_B1"},
        ),
        make_event(tenant, 5, user={"emails": ["a@example.com"]}, attribution={"fbclid": "IwAR_A"}),
        make_event(
            tenant,
            6,
            source_ids={"stripe_customer_id": "cus_b"},
            user={"emails": ["b@example.com"], "phones": [PHONE]},
            attribution={"fbclid": "IwAR_B2", "fbp": "fb.1.2.2"},
        ),
    ]
    linked = record(session_factory, events)

    a, idle = stored["e1"].contact_id, stored["e2"].contact_id
    assert linked["e3"].contact_id == linked["e5"].contact_id == a
    assert (linked["e3"].fbp, linked["e3"].fbclid, linked["e3"].ad_id) == ("fb.1.1.1", None, "ad-a")
    assert linked["e5"].fbclid == "IwAR_A"
    b = linked["e4"].contact_id
    assert linked["e6"].contact_id == b not in (a, idle)
    assert (linked["e4"].fbclid, linked["e4"].fbp) == ("IwAR_B1", None)
    assert utc(linked["e4"].fbc_first_seen_at) == early
    by_id = {c.id: c for c in contacts_of(session_factory, tenant)}
    assert len(by_id) == 3
    assert (by_id[a].email_hash, by_id[a].ad_id) == (hash_field("em", "a@example.com"), "ad-a")
    assert (by_id[a].fbp, by_id[a].fbclid) == ("fb.1.1.1", "IwAR_A")
    assert by_id[b].stripe_customer_id == "cus_b"
    assert by_id[b].email_hash == hash_field("em", "b@example.com")
    assert by_id[b].phone_hash == hash_field("ph", PHONE, default_country="US")
    assert (by_id[b].fbclid, by_id[b].fbp) == ("IwAR_B2", "fb.1.2.2")
    assert utc(by_id[b].fbc_first_seen_at) == NOW
    assert as_utc(by_id[a].updated_at) > long_ago  # changed: bumped
    assert as_utc(by_id[idle].updated_at) == long_ago  # untouched: not written


def test_an_update_writes_only_the_columns_the_batch_changed(
    db_engine: Engine, session_factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    first = record(session_factory, [make_event(tenant, 1, user={"emails": [EMAIL]})])["e1"]

    def rival_sets_an_id() -> None:  # commits between our read and our write
        with session_factory.begin() as other:
            other.get_one(Contact, first.contact_id).ghl_contact_id = "g-rival"

    with before_first(db_engine, "UPDATE CONTACTS", rival_sets_an_id) as seen:
        record(
            session_factory,
            [make_event(tenant, 2, user={"emails": [EMAIL]}, attribution={"fbp": "fb.1.3.3"})],
        )
    assert seen
    [contact] = contacts_of(session_factory, tenant)
    assert (contact.fbp, contact.ghl_contact_id) == ("fb.1.3.3", "g-rival")


def test_a_person_inserted_concurrently_is_found_when_the_batch_is_redone(
    db_engine: Engine, session_factory: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    rival = uuid.uuid4()

    def rival_inserts() -> None:  # commits between our read and our write
        with session_factory.begin() as other:
            other.add(Contact(id=rival, tenant_id=tenant, mc_subscriber_id="m1", fbp="fb.1.9.9"))

    with before_first(db_engine, "INSERT INTO CONTACTS", rival_inserts) as seen:
        linked = record(
            session_factory,
            [
                make_event(
                    tenant,
                    1,
                    user={"emails": [EMAIL]},
                    source_ids={"mc_subscriber_id": "m1"},
                )
            ],
        )
    assert seen  # our INSERT then failed on the id, and the redone batch found the rival
    assert linked["e1"].contact_id == rival
    assert linked["e1"].fbp == "fb.1.9.9"
    [contact] = contacts_of(session_factory, tenant)
    assert (contact.id, contact.email_hash) == (rival, hash_field("em", EMAIL))


def _rows_read(plan: dict[str, Any], table: str) -> int:
    """Rows a PostgreSQL plan read from ``table``: kept or filtered out, over every loop."""
    read = 0
    if plan.get("Relation Name") == table:
        kept = plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)
        read += (kept + plan.get("Rows Removed by Index Recheck", 0)) * plan["Actual Loops"]
    return read + sum(_rows_read(child, table) for child in plan.get("Plans", []))


@pytest.mark.parametrize("analyzed", [False, True], ids=["fresh-statistics", "analyzed"])
def test_the_lookup_reads_the_batch_s_people_not_every_contact_of_the_tenant(
    db_engine: Engine, session_factory: sessionmaker[Session], tenant: uuid.UUID, analyzed: bool
) -> None:
    stored = 5_000
    with session_factory.begin() as session:
        session.execute(
            insert(Contact),
            [
                {
                    "id": uuid.uuid4(),
                    "tenant_id": tenant,
                    "email_hash": hash_field("em", f"old{n}@example.com"),
                    "phone_hash": hash_field("ph", f"+1 650 555 {n:04d}", default_country="US"),
                    "ghl_contact_id": f"g{n}",
                }
                for n in range(stored)
            ],
        )
    if analyzed:
        with db_engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE contacts")
    lookups: list[tuple[str, Any]] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "contacts" in statement:
            lookups.append((statement, parameters))

    events = [  # 50 people: 10 known by email, 10 by source id, 30 new
        make_event(tenant, n, user={"emails": [f"old{n}@example.com"]}) for n in range(10)
    ]
    events += [make_event(tenant, n, source_ids={"ghl_contact_id": f"g{n}"}) for n in range(10, 20)]
    events += [
        make_event(tenant, n, user={"emails": [f"new{n}@example.com"]}) for n in range(20, 50)
    ]
    event.listen(db_engine, "before_cursor_execute", before)
    try:
        linked = record(session_factory, events)
    finally:
        event.remove(db_engine, "before_cursor_execute", before)
    assert len(contacts_of(session_factory, tenant)) == stored + 30
    assert len({linked[f"e{n}"].contact_id for n in range(20)}) == 20  # each found, none new
    assert lookups
    with db_engine.connect() as connection:
        for statement, parameters in lookups:
            if db_engine.dialect.name == "postgresql":
                explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}"
                plan = connection.exec_driver_sql(explain, parameters).scalar_one()[0]["Plan"]
                assert _rows_read(plan, "contacts") <= 2 * len(events)
            else:  # SQLite: a search through an index, never a scan of the table
                explain = f"EXPLAIN QUERY PLAN {statement}"
                details = [row[-1] for row in connection.exec_driver_sql(explain, parameters)]
                assert all("INDEX" in d for d in details if "contacts" in d), details
