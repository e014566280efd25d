"""Row-write benchmark: ``upsert_events`` and ``record_outcomes`` per 1,000-row batch on PostgreSQL.

A fresh PostgreSQL schema; ``--batches`` batches of ``--batch`` rows built by the worker's own
``prepare_event`` (so the rows carry what the worker writes: hashes, ``user_data`` JSON), each
upserted (counting a send) then marked sent with a trace id, each call in its own
transaction as the worker does. Prints, per call, the median and minimum CPU per row of
this process (``time.process_time``) and of the PostgreSQL backend serving the connection
(``bench/cpu.py``'s ``backend_seconds``). On a shared machine the minimum is the
steadier figure.

    .venv/bin/python bench/rows.py [--batches 20] [--batch 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from bench.contacts import BASE_URL, COUNTRIES, build_event  # noqa: E402
from bench.cpu import backend_seconds  # noqa: E402
from capi_stream.database import build_engine, build_session_factory  # noqa: E402
from consumers.pipeline.prepare import prepare_event  # noqa: E402
from storage.events import AttemptOutcome, record_outcomes, upsert_events  # noqa: E402
from storage.migrate import migrate  # noqa: E402
from storage.models import EventStatus  # noqa: E402


def _timed(
    sessions: sessionmaker[Session], work: Callable[[Session], object], into: dict[str, list[float]]
) -> object:
    with sessions.begin() as session:
        backend = session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        server, cpu = backend_seconds(backend), time.process_time()
        result = work(session)
    into["worker"].append(time.process_time() - cpu)
    into["postgres"].append(backend_seconds(backend) - server)
    return result


def run(url: str, args: argparse.Namespace) -> None:
    engine = build_engine(url)
    migrate(engine)
    sessions: sessionmaker[Session] = build_session_factory(engine)
    tenant = uuid.uuid4()
    now = datetime.now(UTC).replace(microsecond=0)
    upserts: dict[str, list[float]] = {"worker": [], "postgres": []}
    records: dict[str, list[float]] = {"worker": [], "postgres": []}
    for b in range(args.batches):
        first = b * args.batch
        rows = []
        for n in range(first, first + args.batch):
            event = build_event(tenant, COUNTRIES[0], n, now)
            rows.append({**prepare_event(event, None, default_country="US", now=now).row})
            rows[-1]["send_attempts"] = 1
        stored = _timed(sessions, lambda s, rows=rows: upsert_events(s, rows), upserts)
        assert isinstance(stored, dict)
        outcomes = [AttemptOutcome(e.id, 1, EventStatus.SENT, "trace") for e in stored.values()]
        _timed(sessions, lambda s, o=outcomes: record_outcomes(s, o), records)
    engine.dispose()

    def us(values: list[float]) -> str:
        per_row = [1e6 * v / args.batch for v in values]
        return f"median {statistics.median(per_row):6.1f} (min {min(per_row):6.1f})"

    print(f"{args.batches} x {args.batch} rows; CPU us per row")
    for name, figures in (("upsert_events", upserts), ("record_outcomes", records)):
        print(f"  {name:16} worker {us(figures['worker'])}  postgres {us(figures['postgres'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    admin = create_engine(BASE_URL)
    schema = f"bench_rows_{uuid.uuid4().hex[:10]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        run(f"{BASE_URL}?options=-csearch_path%3D{schema}", args)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
