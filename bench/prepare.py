"""Micro-benchmark of the worker's CPU-bound preparation: CPU microseconds per event.

Decodes a new-person backlog (``worker_backlog``, every event a new phone and new names, so
the hash cache is cold as in real traffic) once, then times, per event, what the worker does
to it after decoding: ``extract_facts`` (the contact step's hashing) and ``prepare_event``
(user data, custom data, the row, the server event). The hash cache is cleared before each
round. No broker, database or network.

    .venv/bin/python bench/prepare.py [--events 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import worker_backlog as data  # noqa: E402
from capi_stream.avro.codec import build_codec  # noqa: E402
from consumers.pipeline.contact_facts import extract_facts  # noqa: E402
from consumers.pipeline.prepare import prepare_event  # noqa: E402
from meta_capi import hashing  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--people", choices=("new", "templated"), default="new")
    args = parser.parse_args()

    codec = build_codec()
    tenants = data.build_tenants(20)
    countries = {t.tenant_id: t.country for t in tenants}
    templates = data.build_templates(codec, tenants, new_people=args.people == "new")
    events = [codec.decode(v) for v in data.iter_backlog(templates, 0, args.events)]
    work = [(event, countries[event.tenant_id]) for event in events]
    now = datetime.now(UTC)

    facts_us: list[float] = []
    prepare_us: list[float] = []
    for _ in range(args.rounds):
        hashing._hash.cache_clear()
        started = time.process_time()
        for event, country in work:
            extract_facts(event, country)
        middle = time.process_time()
        for event, country in work:
            prepare_event(event, None, default_country=country, now=now)
        ended = time.process_time()
        facts_us.append((middle - started) / len(work) * 1e6)
        prepare_us.append((ended - middle) / len(work) * 1e6)
    total = [a + b for a, b in zip(facts_us, prepare_us, strict=True)]
    for name, figures in (
        ("extract_facts", facts_us),
        ("prepare_event", prepare_us),
        ("both", total),
    ):
        print(
            f"{name:14s} CPU us/event: median {statistics.median(figures):6.1f}"
            f"  min {min(figures):6.1f}  max {max(figures):6.1f}  ({args.rounds} rounds)"
        )


if __name__ == "__main__":
    main()
