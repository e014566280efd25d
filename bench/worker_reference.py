"""What the worker references (``peer_worker.py``, ``lean_worker.py``) share: options, inputs.

``bench/worker.py`` starts each as ``python bench/<script>.py`` with the same options; each
reads the backlog as a plain confluent-kafka consumer of its own group, decodes with
fastavro and writes its rows to a table of its own, and stops on SIGTERM or SIGINT;
``--processes N`` runs N copies in that group.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def reference_parser(description: str, *, threads: int) -> argparse.ArgumentParser:
    """The options every worker reference takes from ``bench/worker.py``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--database-url", required=True, help="a psycopg (libpq) URL")
    parser.add_argument("--graph-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--tenants", required=True, help="JSON: tenant id -> [pixel, country]")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=threads)
    parser.add_argument("--processes", type=int, default=1, help="copies in the group")
    return parser


def open_inputs(args: argparse.Namespace, table_ddl: str) -> tuple[Any, Any, Any]:
    """(database connection with ``table_ddl`` applied, consumer, Avro schema)."""
    import psycopg
    from avro_record import SCHEMA
    from confluent_kafka import Consumer

    connection = psycopg.connect(args.database_url, autocommit=False)
    connection.execute(table_ddl)
    connection.commit()
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    return connection, consumer, SCHEMA


@contextmanager
def copies(count: int) -> Iterator[None]:
    """``count - 1`` more copies of this script beside this process, stopped with it.

    Start them after ``open_inputs``: the first copy has created the table by then.
    """
    argv = [sys.executable, *sys.argv, "--processes", "1"]  # the last --processes wins
    others = [subprocess.Popen(argv) for _ in range(count - 1)]  # noqa: S603
    try:
        yield
    finally:
        for other in others:
            other.send_signal(signal.SIGTERM)
        for other in others:
            other.wait(30)


def batches(args: argparse.Namespace, consumer: Any) -> Iterator[list[Any]]:
    """The backlog in batches of up to ``--batch`` messages until SIGTERM or SIGINT, with
    ``--processes`` copies in the group. Call after ``open_inputs``: the table exists.

    The copies start before this process subscribes, so all join the group's first
    generation together instead of one rebalance per late joiner mid-drain.
    """
    stopping = stop_signal()
    with copies(args.processes):
        consumer.subscribe([args.topic])
        while not stopping[0]:
            messages = [m for m in consumer.consume(args.batch, 1.0) if m.error() is None]
            if messages:
                yield messages


def stop_signal() -> list[bool]:
    """A flag that SIGTERM and SIGINT set: ``while not flag[0]``."""
    flag = [False]

    def stop(*_: object) -> None:
        flag[0] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return flag
