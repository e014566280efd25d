"""Contact-step benchmark: ``record_contacts`` per 1,000-event batch on PostgreSQL and SQLite.

Each database starts fresh (a new PostgreSQL schema, a new SQLite file) with ``--tenants``
tenants; then ``--batches`` batches of ``--batch`` events, spread over the tenants, each in
one transaction as the worker does. Emails are unique per event; phones repeat within a
tenant (a pool of 50), Stripe customer ids repeat across batches (so later batches update
stored contacts); some events carry fbclid/fbp, ad ids or a ManyChat subscriber id.

    .venv/bin/python bench/contacts.py [--batches 20] [--batch 1000] [--tenants 20]
        [--stored 0]

``--stored N`` first fills ``contacts`` with N other people (hashes, a Stripe or ManyChat id
for half of them) and analyses it: the step's cost at a table of that size.

Prints, per database, the median and minimum per batch of wall time, of this process's CPU
time (the Python side), of the PostgreSQL backend's CPU time, and the share of the first
spent in ``extract_facts`` (hashing each event's new email; phones repeat and hit the hash
cache, which the worker's later prepare step reuses). On a shared machine the minimum is the
steadier figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from bench.cpu import backend_seconds  # noqa: E402
from capi_stream.database import build_engine, build_session_factory  # noqa: E402
from capi_stream.event import ConversionEvent  # noqa: E402
from consumers.pipeline.contact_facts import extract_facts  # noqa: E402
from consumers.pipeline.contacts import link_events  # noqa: E402
from meta_capi import hashing  # noqa: E402
from storage.migrate import migrate  # noqa: E402
from storage.models import Contact  # noqa: E402
from storage.tenants import upsert_tenant  # noqa: E402

BASE_URL = os.environ.get(
    "CAPI_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
COUNTRIES = ("US", "GB", "DE", "BR", "FR")
PHONES = {
    "US": "(650) 253-{:04d}",
    "GB": "020 7946 {:04d}",
    "DE": "030 9018{:04d}",
    "BR": "(11) 91234-{:04d}",
    "FR": "01 42 68 {:04d}",
}


def build_event(tenant: uuid.UUID, country: str, n: int, now: datetime) -> ConversionEvent:
    """Event ``n``: four kinds in turn, like the worker benchmark's templates."""
    kind = n % 4
    fields: dict[str, Any] = {"emails": [f" Person.{n}@Example.COM "]}
    source_ids: dict[str, str] = {}
    attribution: dict[str, Any] = {}
    if kind in (0, 1):
        fields["phones"] = [PHONES[country].format(n % 50)]
    if kind == 0:  # Stripe: a customer seen again every few batches
        source_ids["stripe_customer_id"] = f"cus_{n % 5_000}"
        attribution["fbp"] = f"fb.1.1596403881668.{n % 997}"
    elif kind == 1:  # a lead from an ad click
        attribution["fbclid"] = f"IwAR_{n}"
        attribution["ad_id"] = f"ad-{n % 13}"
    elif kind == 2:  # a chatbot subscriber
        source_ids["mc_subscriber_id"] = f"sub{n}"
        fields["ctwa_clid"] = f"ctwa-{n}"
    return ConversionEvent.create(
        tenant_id=tenant,
        source="api",
        source_event_id=f"e{n}",
        event_name="Lead",
        action_source="chat",
        event_time=now - timedelta(seconds=n % 600),
        user=fields,
        source_ids=source_ids,
        attribution=attribution,
    )


def _facts_cpu(events: list[ConversionEvent], countries: dict[uuid.UUID, str | None]) -> float:
    """CPU of ``extract_facts`` over a batch as the call paid it, measured after the call.

    The hash cache is warm by now, so each event's new email is hashed again uncached; its
    phone, from a small pool per tenant, was a cache hit in the call too.
    """
    uncached = hashing._hash.__wrapped__
    cpu = time.process_time()
    for e in events:
        country = countries[e.tenant_id]
        extract_facts(e, country)
        for email in e.user.emails[:1]:
            uncached("em", email, None)
    return time.process_time() - cpu


# Per dialect: the numbers 0..count-1, a 32-character text of i, a new id.
_FILL = {
    "postgresql": (
        "generate_series(0, :count - 1) AS s(i)",
        "md5(CAST(i AS text))",
        "gen_random_uuid()",
    ),
    "sqlite": (
        "(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < :count - 1) "
        "SELECT i FROM s)",
        "printf('%032x', i)",
        "lower(hex(randomblob(16)))",  # how SQLAlchemy's Uuid stores one there
    ),
}


def _store_people(connection: Any, tenants: list[uuid.UUID], count: int) -> None:
    """``count`` contacts spread over ``tenants``, none of them in the batches, then ANALYZE."""
    if count <= 0:
        return
    dialect = connection.dialect.name
    rows, hexed, new_id = _FILL[dialect]
    statement = text(
        "INSERT INTO contacts (id, tenant_id, email_hash, phone_hash, stripe_customer_id, "
        "mc_subscriber_id, created_at, updated_at) "
        f"SELECT {new_id}, :tenant, {hexed} || {hexed}, 'p' || {hexed}, "
        "CASE WHEN i % 4 = 0 THEN 'old_cus_' || i END, "
        "CASE WHEN i % 4 = 1 THEN 'old_sub' || i END, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP "
        f"FROM {rows} WHERE i % :tenants = :position"  # noqa: S608 - fragments above
    )
    for position, tenant in enumerate(tenants):
        connection.execute(
            statement,
            {
                "count": count,
                "tenants": len(tenants),
                "position": position,
                "tenant": tenant if dialect == "postgresql" else tenant.hex,
            },
        )
    connection.execute(text("ANALYZE contacts"))


def run(label: str, url: str, args: argparse.Namespace) -> None:
    engine = build_engine(url)
    migrate(engine)
    sessions: sessionmaker[Session] = build_session_factory(engine)
    tenants = [(uuid.uuid4(), COUNTRIES[i % len(COUNTRIES)]) for i in range(args.tenants)]
    countries: dict[uuid.UUID, str | None] = dict(tenants)
    with sessions.begin() as session:
        for tenant_id, country in tenants:
            upsert_tenant(session, tenant_id, f"bench {tenant_id}", country)
    with engine.begin() as connection:
        _store_people(connection, [tenant for tenant, _ in tenants], args.stored)
    now = datetime.now(UTC).replace(microsecond=0)
    hashing._hash.cache_clear()  # each database's run starts cold, as a new worker would
    walls: list[float] = []
    cpus: list[float] = []
    facts_cpu: list[float] = []
    server_cpus: list[float] = []
    for b in range(args.batches):
        start = b * args.batch
        events = [
            build_event(*tenants[n % len(tenants)], n, now)
            for n in range(start, start + args.batch)
        ]
        with sessions() as session:
            backend = None
            if session.get_bind().dialect.name == "postgresql":
                backend = session.scalar(text("SELECT pg_backend_pid()"))
                session.commit()
            server = backend_seconds(backend) if backend else 0.0
            wall, cpu = time.perf_counter(), time.process_time()
            link_events(session, events, countries)
            session.commit()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            if backend:
                server_cpus.append(backend_seconds(backend) - server)
        facts_cpu.append(_facts_cpu(events, countries))
    with sessions() as session:
        stored = session.scalar(select(func.count()).select_from(Contact))
    engine.dispose()

    def ms(values: list[float]) -> str:
        median, least = statistics.median(values) * 1000, min(values) * 1000
        return f"median {median:6.1f} ms (min {least:6.1f})"

    print(f"{label}: {args.batches} x {args.batch} events, {stored} contacts stored; per batch")
    print(f"  wall {ms(walls)}")
    print(f"  CPU  {ms(cpus)}  (this process)")
    if server_cpus:
        print(f"  CPU  {ms(server_cpus)}  (the PostgreSQL backend)")
    print(f"  of which extract_facts, hashes uncached: {ms(facts_cpu)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--stored", type=int, default=0, help="contacts stored beforehand")
    args = parser.parse_args()

    admin = create_engine(BASE_URL)
    schema = f"bench_contacts_{uuid.uuid4().hex[:10]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        run("postgresql", f"{BASE_URL}?options=-csearch_path%3D{schema}", args)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    with tempfile.TemporaryDirectory() as workdir:
        run("sqlite", f"sqlite:///{workdir}/contacts.db", args)


if __name__ == "__main__":
    main()
