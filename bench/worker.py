"""Worker benchmark: events/s through ONE `capi worker` (broker -> decode -> hash -> PostgreSQL
-> Meta emulator), beside two references measured in the same run, and its memory over time.

1. Starts an embedded broker, a Meta emulator subprocess that keeps only counts, and a fresh
   PostgreSQL schema with ``--tenants`` tenants (Meta integrations pointing at the emulator).
2. Produces a backlog of ``--backlog`` raw events (emails, phones, names in the clear; each
   (tenant, kind) template Avro-encoded once, ids patched per event).
3. References, in their own schema: (a) the naive design on ``--naive-events`` events (per
   event: decode, hash, one INSERT in its own transaction, one POST of that single event with
   a pooled httpx client); (b) bulk inserts of ``--bulk-rows`` already prepared rows with
   SQLAlchemy ``insert().values()`` and with psycopg ``COPY``, 1,000 rows per transaction.
4. Starts one ``capi worker`` subprocess (production batch settings; ``--processes N`` runs
   ``capi worker --processes N``), samples its VmRSS and the group's committed offsets every
   second until the whole backlog is committed, then checks that every row is ``sent`` and
   that the emulator accepted every event.
5. ``--peer``: then the worker peer (``bench/peer_worker.py``: confluent-kafka + Meta's
   ``facebook_business`` SDK + ``INSERT ... ON CONFLICT``) drains the same backlog in its own
   consumer group, with the same CPU accounting, never beside the worker.
6. ``--lean``: then the lean reference (``bench/lean_worker.py``: the floor of plain CPython
   for decode, normalise, hash, send and one row write per event, no contacts) the same way,
   and a check that its hashes equal the worker's for every event; with ``--processes N``,
   the lean reference once more with N processes.

``--people new`` gives every event a new person (cold hash cache; see ``worker_backlog``);
``--meta-latency-ms 200`` makes the emulator answer every request that much later (its
``slow`` fault). ``--processes N`` runs ``capi worker --processes N``.

    .venv/bin/python bench/worker.py [--backlog 100000] [--profile-seconds 20]
    .venv/bin/python bench/worker.py --backlog 30000 --people new --peer \
        --naive-events 0 --bulk-rows 0 --results worker-new-people.json

Writes ``bench/results/worker.json`` (or ``--results``). ``--profile-seconds`` runs ``py-spy
record`` (in the ``bench`` extra) on the worker for that long,
mid-drain.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "worker.json"
BASE_URL = os.environ.get(
    "CAPI_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

sys.path.insert(0, str(ROOT))
from bench import worker_backlog as data  # noqa: E402
from bench.cpu import CpuSnapshot, describe, machine_seconds  # noqa: E402


def _schema_url(schema: str) -> str:
    return f"{BASE_URL}?options=-csearch_path%3D{schema}"


def _create_schema(admin: Any, schema: str) -> str:
    from sqlalchemy import text

    from capi_stream.database import build_engine
    from storage.migrate import migrate

    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = _schema_url(schema)
    engine = build_engine(url)
    migrate(engine)
    engine.dispose()
    return url


def _rss_kb(pid: int) -> int | None:
    """VmRSS of ``pid`` with its descendants (``--processes N``: the supervisor's workers)."""
    from bench.cpu import family

    sizes = [_own_rss_kb(member) for member in family(pid)]
    known = [size for size in sizes if size is not None]
    return sum(known) if known else None


def _own_rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _wait_port(port: int, timeout: float = 30.0) -> None:
    from capi_stream.kafka.broker import wait_for_port

    wait_for_port("127.0.0.1", port, timeout)


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _committed(consumer: Any, partitions: list[Any]) -> int:
    return sum(max(tp.offset, 0) for tp in consumer.committed(partitions, timeout=10))


def _time_at(samples: list[dict[str, Any]], target: float) -> float:
    """Interpolated time at which the committed count reached ``target``."""
    previous = samples[0]
    for sample in samples:
        if sample["committed"] >= target:
            span = sample["committed"] - previous["committed"]
            if span <= 0:
                return float(sample["t"])
            fraction = (target - previous["committed"]) / span
            return float(previous["t"] + fraction * (sample["t"] - previous["t"]))
        previous = sample
    return float(samples[-1]["t"])


def _drain(
    worker: subprocess.Popen[bytes],
    consumer: Any,
    partitions: list[Any],
    total: int,
    args: argparse.Namespace,
    workdir: Path,
    watch: dict[str, int],
    cpu: Callable[[], CpuSnapshot] | None = None,
) -> tuple[list[dict[str, Any]], str | None, tuple[CpuSnapshot, int] | None]:
    """Sample every second until ``total`` offsets are committed; optionally py-spy.

    With ``cpu``, also a CPU snapshot at the first commit (with the count committed then), so
    CPU per event can leave out start-up: imports, joining the group, the first batch.
    """
    samples: list[dict[str, Any]] = []
    warm: tuple[CpuSnapshot, int] | None = None
    started = time.monotonic()
    deadline = started + args.timeout
    profiler: subprocess.Popen[bytes] | None = None
    profile_path: str | None = None
    while True:
        now = time.monotonic() - started
        committed = _committed(consumer, partitions)
        sample: dict[str, Any] = {"t": round(now, 2), "committed": committed}
        for name, pid in watch.items():
            sample[f"{name}_rss_mb"] = round((_rss_kb(pid) or 0) / 1024, 1)
        samples.append(sample)
        if cpu is not None and warm is None and committed > 0 and committed < total:
            warm = (cpu(), committed)
        if committed >= total:
            break
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited early with {worker.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out: {committed}/{total} committed")
        if (
            args.profile_seconds
            and profiler is None
            and committed > total * 0.1
            and total - committed > 0
        ):
            profile_path = str(workdir / "worker-profile.txt")
            profiler = subprocess.Popen(  # noqa: S603
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--format",
                    "raw",
                    "--rate",
                    "100",
                    "--duration",
                    str(args.profile_seconds),
                    "--pid",
                    str(worker.pid),
                    "--output",
                    profile_path,
                    "--threads",
                    *([] if args.profile_cpu_only else ["--idle"]),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started - now)))
    if profiler is not None:
        profiler.wait(args.profile_seconds + 30)
    return samples, profile_path, warm


def _summarise(samples: list[dict[str, Any]], total: int) -> dict[str, Any]:
    first = next(s["t"] for s in samples if s["committed"] > 0)
    end = _time_at(samples, total)
    t05, t95 = _time_at(samples, 0.05 * total), _time_at(samples, 0.95 * total)
    warm = _time_at(samples, 0.10 * total)
    rss = [s["worker_rss_mb"] for s in samples if s["t"] >= warm and s["worker_rss_mb"] > 0]
    all_rss = [s["worker_rss_mb"] for s in samples if s["worker_rss_mb"] > 0]
    median = statistics.median(rss) if rss else 0.0
    return {
        "first_commit_s": first,
        "drain_s": end,
        "events_per_s_overall": total / end,
        "events_per_s_after_first_commit": total / (end - first) if end > first else None,
        "events_per_s_steady": 0.9 * total / (t95 - t05) if t95 > t05 else None,
        "rss_mb": {
            "start": all_rss[0] if all_rss else None,
            "after_warmup": {
                "min": min(rss),
                "median": median,
                "max": max(rss),
                "max_over_median": max(rss) / median,
            }
            if rss
            else None,
            "overall_max": max(all_rss) if all_rss else None,
            "flat": bool(rss) and max(rss) <= 1.2 * median,
        },
    }


def main(args: argparse.Namespace) -> None:  # noqa: C901 - one linear script
    from confluent_kafka import Consumer, TopicPartition
    from sqlalchemy import create_engine, text

    from capi_stream.avro.codec import build_codec
    from capi_stream.database import build_engine, build_session_factory
    from capi_stream.kafka.broker import EmbeddedBroker, find_free_port
    from capi_stream.kafka.config import KafkaConfig
    from capi_stream.kafka.topics import TopicNames, ensure_topics
    from capi_stream.secrets import build_secret_box, generate_key

    global RESULTS
    RESULTS = RESULTS.parent / args.results

    workdir = Path(tempfile.mkdtemp(prefix="capi-bench-worker-"))
    run = uuid.uuid4().hex[:8]
    admin = create_engine(BASE_URL)
    schemas = [f"bench_w_{run}", f"bench_r_{run}"]
    load_before = os.getloadavg()
    busy_before = machine_seconds()
    processes: list[subprocess.Popen[bytes]] = []
    result: dict[str, Any] = {
        "backlog": args.backlog,
        "tenants": args.tenants,
        "people": args.people,
        "meta_latency_ms": args.meta_latency_ms,
        "processes": args.processes,
        "partitions": args.partitions,
        "cpus": os.cpu_count(),
        "loadavg_before": load_before,
    }
    broker = EmbeddedBroker(log_path=workdir / "tansu.log").start()
    try:
        worker_url = _create_schema(admin, schemas[0])
        ref_url = _create_schema(admin, schemas[1])
        codec = build_codec()
        tenants = data.build_tenants(args.tenants)
        engine = build_engine(worker_url)
        # Credentials are sealed at rest; `capi worker` inherits this key through the env.
        box = build_secret_box(os.environ.setdefault("CAPI_SECRETS_KEY", generate_key()))
        data.seed_tenants(build_session_factory(engine, box), tenants)
        engine.dispose()

        emulator_port = find_free_port()
        with open(workdir / "emulator.log", "wb") as log:
            emulator = subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    "-m",
                    "meta_capi.emulator",
                    "--port",
                    str(emulator_port),
                    "--no-keep-events",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        processes.append(emulator)
        _wait_port(emulator_port)
        graph_url = f"http://127.0.0.1:{emulator_port}"
        if args.meta_latency_ms:
            import httpx

            httpx.post(
                f"{graph_url}/_emulator/faults",
                timeout=10,
                json={
                    "kind": "slow",
                    "delay_seconds": args.meta_latency_ms / 1000,
                },
            ).raise_for_status()

        kafka = KafkaConfig(bootstrap_servers=broker.bootstrap_servers)
        topics = TopicNames(main=f"bench.events.{run}")
        ensure_topics(kafka.admin_config(), topics.all, args.partitions)
        templates = data.build_templates(codec, tenants, new_people=args.people == "new")
        producer = kafka.producer_config()
        produce_s = data.produce_backlog(producer, topics.main, templates, args.backlog)
        result["produce"] = {
            "seconds": produce_s,
            "events_per_s": args.backlog / produce_s,
            "templates": len(templates),
            "mean_value_bytes": sum(len(t.value) for t in templates) / len(templates),
        }
        print(f"produced {args.backlog} events in {produce_s:.1f}s", flush=True)

        # -- references (before the worker, never beside it) ------------------------------
        ref_engine = build_engine(ref_url)
        naive_values = list(data.iter_backlog(templates, 10**9, args.naive_events))
        if args.naive_events and args.meta_latency_ms:
            print("naive reference skipped: one request per event at that latency", flush=True)
        elif args.naive_events:
            result["naive"] = data.run_naive(ref_engine, codec, naive_values, tenants, graph_url)
            print(f"naive: {result['naive']['events_per_s']:.0f} events/s", flush=True)
        countries = {t.tenant_id: t.country for t in tenants}
        if args.bulk_rows:
            base = [
                p.row
                for _, p in data.prepare_rows(
                    codec,
                    naive_values[:2000] or list(data.iter_backlog(templates, 10**9, 200)),
                    countries,
                )
            ]
            rows = data.bulk_rows(base, args.bulk_rows)
            with ref_engine.begin() as connection:
                connection.execute(text("TRUNCATE meta_capi_events"))
            result["bulk_insert"] = data.run_bulk_insert(ref_engine, rows, 1000)
            with ref_engine.begin() as connection:
                connection.execute(text("TRUNCATE meta_capi_events"))
            result["bulk_copy"] = data.run_bulk_copy(ref_engine, rows, 1000)
            del rows, base
            print(
                f"bulk: insert {result['bulk_insert']['rows_per_s']:.0f} rows/s, "
                f"copy {result['bulk_copy']['rows_per_s']:.0f} rows/s",
                flush=True,
            )
        ref_engine.dispose()

        # -- the worker --------------------------------------------------------------------
        group = f"bench-worker-{run}"
        env = {
            **os.environ,
            "DATABASE_URL": worker_url,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "META_GRAPH_URL": graph_url,
            "TOPIC_MAIN": topics.main,
            "TOPIC_PARTITIONS": str(args.partitions),
            "CONSUMER_GROUP": group,
            "WORKER_METRICS_PORT": "0",
            "BATCH_MAX_EVENTS": "1000",
            "DATA_DIR": str(workdir),
        }
        monitor = Consumer(kafka.consumer_config(group))
        partitions = [TopicPartition(topics.main, p) for p in range(args.partitions)]
        cpu_pids = {"broker": broker.pid or 0, "emulator": emulator.pid}
        worker_argv = [str(Path(sys.executable).parent / "capi"), "worker"]
        if args.processes > 1:
            worker_argv += ["--processes", str(args.processes)]
        with open(workdir / "worker.log", "wb") as log:
            worker = subprocess.Popen(  # noqa: S603
                worker_argv,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        processes.append(worker)

        def take() -> CpuSnapshot:
            return CpuSnapshot.take(
                {"worker": worker.pid, **cpu_pids}, postgres=True, children=True
            )

        cpu_start = take()
        watch = {"worker": worker.pid, "emulator": emulator.pid}
        samples, profile, warm = _drain(
            worker, monitor, partitions, args.backlog, args, workdir, watch, take
        )
        cpu_end = take()
        monitor.close()
        _stop(worker)
        summary = _summarise(samples, args.backlog)
        check = create_engine(worker_url)
        with check.connect() as connection:
            query = text("SELECT status, count(*) FROM meta_capi_events GROUP BY status")
            by_status = dict(connection.execute(query).all())
        check.dispose()
        import httpx

        counts = httpx.get(f"{graph_url}/_emulator/events", timeout=10).json()["counts"]
        accepted = sum(counts.values()) - args.naive_events
        result["worker"] = {
            **summary,
            "rows_by_status": by_status,
            "emulator_accepted": accepted,
            "cpu_with_startup": cpu_end.per_event(cpu_start, args.backlog),
            "cpu": _warm_cpu(cpu_end, warm, cpu_start, args.backlog),
            "profile": profile,
            "samples": samples,
        }
        print(
            f"worker: {summary['events_per_s_steady']:.0f} events/s steady; "
            f"{describe(result['worker']['cpu'])}",
            flush=True,
        )
        if args.baseline:
            result["baseline_worker"] = _run_baseline(
                args, env, ref_url, tenants, cpu_pids, kafka, partitions, workdir
            )
        wanted = [(SDK_PEER, "sdk_peer")] * args.peer + [(LEAN, "lean")] * args.lean
        if args.lean and args.processes > 1:  # the floor's own scaling, beside the worker's
            many = replace(LEAN, label=f"{LEAN.label}, {args.processes} processes")
            wanted.append((replace(many, processes=args.processes), "lean_processes"))
        for reference, key in wanted:
            accepted_before = sum(
                httpx.get(f"{graph_url}/_emulator/events", timeout=10).json()["counts"].values()
            )
            result[key] = _run_peer(
                reference,
                args,
                broker.bootstrap_servers,
                topics.main,
                worker_url,
                graph_url,
                tenants,
                cpu_pids,
                kafka,
                partitions,
                workdir,
                accepted_before,
            )
            if key == "lean":  # before another drain replaces the table
                result["lean"]["hashes_differing_from_worker"] = _compare_hashes(worker_url)
    finally:
        for process in reversed(processes):
            _stop(process, signal.SIGINT)
        broker.stop()
        with admin.begin() as connection:
            for schema in schemas:
                if not args.keep:
                    connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    result["loadavg_after"] = os.getloadavg()
    busy_after = machine_seconds()
    result["machine_cpu_busy_fraction_whole_run"] = (busy_after[0] - busy_before[0]) / max(
        1e-9, busy_after[1] - busy_before[1]
    )
    _report(result, workdir)


def _warm_cpu(
    end: CpuSnapshot, warm: tuple[CpuSnapshot, int] | None, start: CpuSnapshot, total: int
) -> dict[str, Any]:
    """CPU per event from the first commit on (start-up left out), else from the start."""
    if warm is None:
        return end.per_event(start, total)
    snapshot, committed = warm
    return {**end.per_event(snapshot, total - committed), "events": total - committed}


def _run_baseline(
    args: argparse.Namespace,
    env: dict[str, str],
    database_url: str,
    tenants: list[Any],
    cpu_pids: dict[str, int],
    kafka: Any,
    partitions: list[Any],
    workdir: Path,
) -> dict[str, Any]:
    """``capi worker`` of another checkout (``--baseline DIR``) on the same backlog: before/after.

    Its own consumer group and its own schema (the reference one, seeded with the same tenants).
    """
    from confluent_kafka import Consumer
    from sqlalchemy import create_engine, text

    from capi_stream.database import build_engine, build_session_factory
    from capi_stream.secrets import build_secret_box

    engine = build_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE meta_capi_events"))
    # Sealed with the key ``main`` set; the baseline worker inherits it through ``env``.
    box = build_secret_box(os.environ["CAPI_SECRETS_KEY"])
    data.seed_tenants(build_session_factory(engine, box), tenants)
    engine.dispose()
    group = f"bench-baseline-{uuid.uuid4().hex[:8]}"
    base_env = {
        **env,
        "DATABASE_URL": database_url,
        "CONSUMER_GROUP": group,
        "PYTHONPATH": str(Path(args.baseline).resolve()),
    }
    monitor = Consumer(kafka.consumer_config(group))
    with open(workdir / "baseline.log", "wb") as log:
        worker = subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", "from ops.cli import main; main()", "worker"],
            env=base_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(Path(args.baseline).resolve()),
        )
    try:

        def take() -> CpuSnapshot:
            return CpuSnapshot.take({"worker": worker.pid, **cpu_pids}, postgres=True)

        start = take()
        samples, _, warm = _drain(
            worker,
            monitor,
            partitions,
            args.backlog,
            argparse.Namespace(**{**vars(args), "profile_seconds": 0}),
            workdir,
            {"worker": worker.pid},
            take,
        )
        end = take()
    finally:
        monitor.close()
        _stop(worker)
    check = create_engine(database_url)
    with check.connect() as connection:
        query = text("SELECT status, count(*) FROM meta_capi_events GROUP BY status")
        by_status = dict(connection.execute(query).all())
    check.dispose()
    summary = _summarise(samples, args.backlog)
    out = {
        **summary,
        "code": Path(args.baseline).name,
        "rows_by_status": by_status,
        "cpu": _warm_cpu(end, warm, start, args.backlog),
        "samples": samples,
    }
    print(
        f"baseline worker: {summary['events_per_s_steady']:.0f} events/s steady; "
        f"{describe(out['cpu'])}",
        flush=True,
    )
    return out


@dataclass(frozen=True)
class Reference:
    """A program that drains the backlog beside the worker: the SDK peer or the lean one."""

    label: str
    script: str
    table: str
    cpu_name: str  # its name in the CPU figures
    processes: int = 1  # copies in one consumer group (``--processes N`` of the script)


SDK_PEER = Reference("SDK peer", "peer_worker.py", "peer_events", "peer")
LEAN = Reference("lean reference", "lean_worker.py", "lean_events", "lean")


def _run_peer(
    reference: Reference,
    args: argparse.Namespace,
    bootstrap: str,
    topic: str,
    database_url: str,
    graph_url: str,
    tenants: list[Any],
    cpu_pids: dict[str, int],
    kafka: Any,
    partitions: list[Any],
    workdir: Path,
    accepted_before: int,
) -> dict[str, Any]:
    """``reference`` drains the same backlog in a group of its own."""
    import httpx
    from confluent_kafka import Consumer
    from sqlalchemy import create_engine, text

    group = f"bench-{reference.table}-{uuid.uuid4().hex[:8]}"
    argv = [
        sys.executable,
        str(ROOT / "bench" / reference.script),
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--group",
        group,
        "--graph-url",
        graph_url,
        "--database-url",
        database_url.replace("postgresql+psycopg://", "postgresql://"),
        "--token",
        data.TOKEN,
        "--tenants",
        json.dumps({str(t.tenant_id): [t.pixel_id, t.country] for t in tenants}),
        "--processes",
        str(reference.processes),
    ]
    fresh = create_engine(database_url)
    with fresh.begin() as connection:  # each drain writes its own rows
        connection.execute(text(f"DROP TABLE IF EXISTS {reference.table}"))
    fresh.dispose()
    monitor = Consumer(kafka.consumer_config(group))
    with open(workdir / f"{reference.table}.log", "wb") as log:
        peer = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:

        def take() -> CpuSnapshot:
            pids = {reference.cpu_name: peer.pid, **cpu_pids}
            return CpuSnapshot.take(pids, postgres=True, children=True)

        start = take()
        samples, _, warm = _drain(
            peer,
            monitor,
            partitions,
            args.backlog,
            argparse.Namespace(**{**vars(args), "profile_seconds": 0}),
            workdir,
            {"worker": peer.pid},
            take,
        )
        end = take()
    finally:
        monitor.close()
        _stop(peer)
    summary = _summarise(samples, args.backlog)
    counts = httpx.get(f"{graph_url}/_emulator/events", timeout=10).json()["counts"]
    check = create_engine(database_url)
    with check.connect() as connection:
        rows = connection.execute(text(f"SELECT count(*) FROM {reference.table}")).scalar_one()
    check.dispose()
    peer_result = {
        **summary,
        "rows": rows,
        "emulator_accepted": sum(counts.values()) - accepted_before,
        "cpu_with_startup": end.per_event(start, args.backlog),
        "cpu": _warm_cpu(end, warm, start, args.backlog),
        "samples": samples,
    }
    print(
        f"{reference.label}: {summary['events_per_s_steady']:.0f} events/s steady; "
        f"{describe(peer_result['cpu'])}",
        flush=True,
    )
    return peer_result


# Not user_external_id: the worker adds its contact id to external_id, the lean one has none.
HASH_COLUMNS = (
    "user_email_hash, user_phone_hash, user_first_name_hash, user_last_name_hash, "
    "user_gender_hash, user_date_of_birth_hash, user_city_hash, user_state_hash, "
    "user_zip_hash, user_country_hash"
)


def _compare_hashes(database_url: str) -> int:
    """Events whose hashed fields differ between the lean reference's rows and the worker's."""
    from sqlalchemy import create_engine, text

    query = text(
        f"SELECT count(*) FROM meta_capi_events m FULL JOIN lean_events l USING (tenant_id, "
        f"event_id) WHERE ({HASH_COLUMNS.replace('user_', 'm.user_')}) IS DISTINCT FROM "
        f"({HASH_COLUMNS.replace('user_', 'l.user_')})"
    )
    check = create_engine(database_url)
    with check.connect() as connection:
        differing = int(connection.execute(query).scalar_one())
    check.dispose()
    return differing


def _report(result: dict[str, Any], workdir: Path) -> None:
    w = result["worker"]
    steady = w["events_per_s_steady"]
    naive = result.get("naive", {}).get("events_per_s")
    values = result.get("bulk_insert", {}).get("rows_per_s")
    copy = result.get("bulk_copy", {}).get("rows_per_s")
    peer = result.get("sdk_peer")
    result["ratios"] = {
        "worker_over_naive": steady / naive if naive else None,
        "worker_over_bulk_insert": steady / values if values else None,
        "worker_over_bulk_copy": steady / copy if copy else None,
    }
    baseline = result.get("baseline_worker")
    if baseline:
        result["ratios"]["worker_cpu_over_baseline_cpu"] = (
            w["cpu"]["us_per_event"]["worker"] / baseline["cpu"]["us_per_event"]["worker"]
        )
    if peer:
        mine, theirs = w["cpu"]["us_per_event"]["worker"], peer["cpu"]["us_per_event"]["peer"]
        result["ratios"]["worker_cpu_over_sdk_peer_cpu"] = mine / theirs if theirs else None
        result["ratios"]["worker_rate_over_sdk_peer_rate"] = (
            steady / peer["events_per_s_steady"] if peer["events_per_s_steady"] else None
        )
    lean = result.get("lean")
    if lean:
        mine, floor = w["cpu"]["us_per_event"]["worker"], lean["cpu"]["us_per_event"]["lean"]
        result["ratios"]["worker_cpu_over_lean_cpu"] = mine / floor if floor else None
        if peer:
            theirs = peer["cpu"]["us_per_event"]["peer"]
            result["ratios"]["lean_cpu_over_sdk_peer_cpu"] = floor / theirs if theirs else None
        if many := result.get("lean_processes"):
            result["ratios"]["lean_processes_over_one_lean_rate"] = (
                many["events_per_s_steady"] / lean["events_per_s_steady"]
            )
    rss = w["rss_mb"]["after_warmup"]
    print(f"\n{'measure':<44} {'value':>12}")
    print(f"{'worker events/s (steady, 5%-95%)':<44} {steady:>12.0f}")
    print(f"{'worker events/s (overall incl. join)':<44} {w['events_per_s_overall']:>12.0f}")
    print(
        f"{'worker first commit (s) / drain (s)':<44} {w['first_commit_s']:>5.1f} / "
        f"{w['drain_s']:.1f}"
    )
    if naive:
        print(f"{'(a) naive events/s':<44} {naive:>12.1f}")
    if values and copy:
        print(f"{'(b) bulk insert() executemany rows/s':<44} {values:>12.0f}")
        print(f"{'(b) bulk COPY rows/s':<44} {copy:>12.0f}")
    if peer:
        print(f"{'(c) SDK peer events/s (steady)':<44} {peer['events_per_s_steady']:>12.0f}")
        print(f"(c) SDK peer rows {peer['rows']}, emulator accepted {peer['emulator_accepted']}")
        print(describe(peer["cpu"]))
    if lean:
        print(f"{'(d) lean reference events/s (steady)':<44} {lean['events_per_s_steady']:>12.0f}")
        print(
            f"(d) lean rows {lean['rows']}, emulator accepted {lean['emulator_accepted']}, "
            f"hashes differing from the worker's: {lean['hashes_differing_from_worker']}"
        )
        print(describe(lean["cpu"]))
    for name, ratio in result["ratios"].items():
        if ratio is not None:
            print(f"{name:<44} {ratio:>12.2f}")
    if rss:
        print(
            f"{'worker RSS MB after warm-up min/med/max':<44} {rss['min']:.0f} / "
            f"{rss['median']:.0f} / {rss['max']:.0f}  flat={w['rss_mb']['flat']}"
        )
    print(f"rows by status: {w['rows_by_status']}  emulator accepted: {w['emulator_accepted']}")
    print(describe(w["cpu"]))
    print(f"logs: {workdir}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str))
    sent = w["rows_by_status"].get("sent", 0)
    if sent != result["backlog"]:
        sys.exit(f"only {sent} of {result['backlog']} rows are sent")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--naive-events", type=int, default=2000)
    parser.add_argument("--bulk-rows", type=int, default=50_000)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--profile-seconds", type=int, default=0)
    parser.add_argument(
        "--profile-cpu-only",
        action="store_true",
        help="on-CPU samples only (default: wall clock incl. idle)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schemas")
    parser.add_argument(
        "--people",
        choices=("templated", "new"),
        default="templated",
        help="new: a new person (phone, names, email) per event",
    )
    parser.add_argument(
        "--meta-latency-ms",
        type=float,
        default=0.0,
        help="the emulator answers every request this much later",
    )
    parser.add_argument(
        "--peer",
        action="store_true",
        help="also drain the backlog with the SDK peer (bench/peer_worker.py)",
    )
    parser.add_argument(
        "--lean",
        action="store_true",
        help="also drain the backlog with the lean reference (bench/lean_worker.py)",
    )
    parser.add_argument("--processes", type=int, default=1, help="capi worker --processes N")
    parser.add_argument("--results", default="worker.json", help="file name in bench/results")
    parser.add_argument(
        "--baseline",
        default=None,
        help="a checkout of another commit: its worker drains the same backlog",
    )
    return parser


if __name__ == "__main__":
    main(_parser().parse_args())
