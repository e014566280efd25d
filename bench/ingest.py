"""Ingest benchmark: `capi serve` against a hello-world ASGI app, same machine, same load.

Starts an embedded broker, a database (SQLite, or ``DATABASE_URL``) with one seeded tenant,
one ``capi serve`` process and one minimal ASGI app (both uvicorn, 1 worker, uvloop +
httptools), then drives each with the same load generator, a separate process holding N
keep-alive connections that sends signed Stripe ``payment_intent.succeeded`` webhooks with
unique payment ids for a fixed time. Reports requests/s and p50/p99 latency of both and the
ratio, the CPU per request of each process (and of each server thread: the Python one and
librdkafka's), checks that every acknowledged event is on the topic, and writes
``bench/results/ingest.json`` (or ``--results NAME``).

    .venv/bin/python bench/ingest.py [--duration 10] [--connections 32] [--peer] [--lean]
        [--workers 2] [--profile-seconds 8] [--baseline-src DIR]

``--peer`` also drives the ingest peer (``bench/peer_ingest.py``: FastAPI + pydantic +
``stripe.Webhook.construct_event`` + confluent-kafka awaiting the delivery report) with the
same load, on a topic of its own. ``--lean`` also drives the lean reference
(``bench/lean_ingest.py``: a raw ASGI app that checks the signature, parses with orjson,
encodes with fastavro and awaits confluent-kafka's delivery report, nothing more) the same
way: the floor of Python doing the webhook's work on the same uvicorn; it adds the ratios of
server CPU per request capi/lean and lean/hello. ``--workers N`` runs ``capi serve
--workers N``.
``--baseline-src DIR`` also drives a second ``capi serve`` running the sources in DIR (e.g.
``git archive HEAD | tar -x -C DIR``), on a topic of its own: before/after in one run.
``--profile-seconds S`` runs ``py-spy record`` (not a project dependency: ``pip install
py-spy``) on ``capi serve`` for S seconds while it is under load, and prints where the path
of the profile (raw, collapsed stacks) is; py-spy's sampling costs the server a little CPU.

The generator is a raw asyncio HTTP/1.1 client (no httpx): a heavy client on a small machine
would cap the hello-world rate and flatter the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS_DIR = ROOT / "bench" / "results"
SECRET = "whsec_bench_0001"


async def hello_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The baseline: reads the body, answers a small JSON (what a no-op webhook costs)."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b'{"status":"accepted"}'
    await send(
        {
            "type": "http.response.start",
            "status": 202,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --- load generator (runs in its own process) ----------------------------------------------


def _stripe_body(index: int, run: str) -> bytes:
    now = int(time.time())
    return json.dumps(
        {
            "id": f"evt_{run}_{index}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": now,
            "livemode": False,
            "data": {
                "object": {
                    "id": f"pi_{run}_{index}",
                    "object": "payment_intent",
                    "status": "succeeded",
                    "amount": 15000,
                    "amount_received": 15000,
                    "currency": "usd",
                    "customer": f"cus_{run}_{index}",
                    "receipt_email": f"buyer{index}@example.com",
                    "metadata": {},
                    "created": now,
                }
            },
        },
        separators=(",", ":"),
    ).encode()


def _request(host: str, port: int, path: str, body: bytes) -> bytes:
    t = int(time.time())
    digest = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Stripe-Signature: t={t},v1={digest}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _worker(
    host: str,
    port: int,
    path: str,
    run: str,
    counter: list[int],
    stop_at: float,
    latencies: list[float],
    acked: list[str],
    errors: dict[str, int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            counter[0] += 1
            payload = _request(host, port, path, _stripe_body(counter[0], run))
            started = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status == 202:
                event_id = json.loads(body or b"{}").get("event_id")
                if event_id:
                    acked.append(event_id)
            else:
                errors[str(status)] = errors.get(str(status), 0) + 1
    finally:
        writer.close()


async def _load(
    url_host: str, port: int, path: str, connections: int, duration: float
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    latencies: list[float] = []
    acked: list[str] = []
    errors: dict[str, int] = {}
    counter = [0]
    started = time.perf_counter()
    stop_at = started + duration
    await asyncio.gather(
        *(
            _worker(url_host, port, path, run, counter, stop_at, latencies, acked, errors)
            for _ in range(connections)
        )
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else None,
        "errors": errors,
        "acked": acked,
    }


def _run_load(args: argparse.Namespace) -> None:
    import uvloop

    started = time.process_time()
    result = uvloop.run(_load(args.host, args.port, args.path, args.connections, args.duration))
    result["cpu_seconds"] = time.process_time() - started
    json.dump(result, sys.stdout)


# --- orchestration ------------------------------------------------------------------------


def _wait_http(port: int, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}")


def _profiler(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """``py-spy record`` of ``pid`` (every thread, CPU samples only) for ``seconds``."""
    return subprocess.Popen(  # noqa: S603
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--format",
            "raw",
            "--rate",
            "200",
            "--duration",
            str(int(seconds)),
            "--pid",
            str(pid),
            "--output",
            str(output),
            "--threads",
            "--nonblocking",
            *(["--native"] if os.environ.get("BENCH_NATIVE") else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _thread_seconds(pid: int) -> dict[str, float]:
    """CPU seconds of ``pid``'s threads, summed by thread name (librdkafka's run no Python)."""
    seconds: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks = int(fields[11]) + int(fields[12])
        seconds[name] = seconds.get(name, 0.0) + ticks / os.sysconf("SC_CLK_TCK")
    return seconds


def _drive(
    port: int,
    path: str,
    args: argparse.Namespace,
    pids: dict[str, int],
    profile: Path | None = None,
) -> dict[str, Any]:
    """One load run against ``port``, with the CPU each of ``pids`` spent per request.

    With ``profile``, the server is sampled by py-spy during the run (after a second of
    warm-up) and the profile written there.
    """
    from bench.cpu import CpuSnapshot

    argv = [
        sys.executable,
        __file__,
        "--load",
        "--port",
        str(port),
        "--path",
        path,
        "--connections",
        str(args.connections),
        "--duration",
        str(args.duration),
    ]
    before = CpuSnapshot.take(pids, children=True)  # with its workers (--workers N)
    threads_before = _thread_seconds(pids["server"])
    load = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)  # noqa: S603
    profiler = None
    if profile is not None:
        time.sleep(1.0)
        seconds = min(args.profile_seconds, max(1.0, args.duration - 2))
        profiler = _profiler(pids["server"], seconds, profile)
    output, _ = load.communicate()
    after = CpuSnapshot.take(pids, children=True)
    threads_after = _thread_seconds(pids["server"])
    if load.returncode:
        raise subprocess.CalledProcessError(load.returncode, argv)
    if profiler is not None:
        profiler.wait(60)
    result: dict[str, Any] = json.loads(output)
    cpu = after.per_event(before, max(1, result["requests"]))
    cpu["us_per_event"]["load generator"] = round(
        1e6 * result.pop("cpu_seconds") / max(1, result["requests"]), 1
    )
    result["cpu"] = cpu
    result["server_threads_us_per_request"] = {
        name: round(1e6 * (spent - threads_before.get(name, 0.0)) / max(1, result["requests"]), 1)
        for name, spent in sorted(threads_after.items())
        if spent - threads_before.get(name, 0.0) > 0
    }
    return result


def _topic_event_ids(bootstrap: str, topic: str) -> set[str]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    from capi_stream.avro.codec import build_codec

    codec = build_codec(None, topic)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    found: set[str] = set()
    at_end: set[int] = set()
    deadline = time.monotonic() + 60
    while len(at_end) < len(partitions) and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.5):
            error = message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                at_end.add(message.partition())
            elif error is None:
                found.add(codec.decode(message.value()).event_id)
    consumer.close()
    return found


def _seed(database_url: str) -> uuid.UUID:
    from capi_stream.database import build_engine, build_session_factory
    from capi_stream.secrets import build_secret_box, generate_key
    from storage.migrate import migrate
    from storage.tenants import upsert_integration, upsert_tenant

    # Credentials are sealed at rest; `capi serve` inherits this key through the environment.
    box = build_secret_box(os.environ.setdefault("CAPI_SECRETS_KEY", generate_key()))
    engine = build_engine(database_url)
    migrate(engine, secrets=box)
    tenant_id = uuid.uuid4()
    with build_session_factory(engine, box)() as session:
        upsert_tenant(session, tenant_id, "bench", "US")
        upsert_integration(session, tenant_id, "stripe", {"webhook_secret": SECRET})
        session.commit()
    engine.dispose()
    return tenant_id


def _serve(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as handle:
        return subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT)  # noqa: S603


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _uvicorn(target: str, port: int) -> list[str]:
    """The command running the ASGI app ``target`` of bench/: 1 worker, uvloop + httptools."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(ROOT / "bench"),
        target,
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def _row(name: str, result: dict[str, Any]) -> str:
    return (
        f"{name:<12} {result['requests']:>9} {result['rps']:>10.0f} "
        f"{result['p50_ms']:>9.2f} {result['p99_ms']:>9.2f}  {result['errors'] or ''}"
    )


def main(args: argparse.Namespace) -> None:
    from bench.cpu import describe
    from capi_stream.kafka.broker import EmbeddedBroker, find_free_port
    from capi_stream.kafka.topics import ensure_topics

    workdir = Path(tempfile.mkdtemp(prefix="capi-bench-"))
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{workdir / 'bench.db'}"
    topic = f"bench.events.{uuid.uuid4().hex[:8]}"
    peer_topic = f"{topic}.peer"
    lean_topic = f"{topic}.lean"
    with EmbeddedBroker(log_path=workdir / "tansu.log") as broker:
        topics = (topic, peer_topic, lean_topic, f"{topic}.baseline")
        ensure_topics({"bootstrap.servers": broker.bootstrap_servers}, topics, 6)
        tenant_id = _seed(database_url)
        capi_port, hello_port = find_free_port(), find_free_port()
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "DATABASE_URL": database_url,
            "TOPIC_MAIN": topic,
            "DATA_DIR": str(workdir),
        }
        bin_dir = Path(sys.executable).parent
        workers = ["--workers", str(args.workers)] if args.workers > 1 else []
        capi = _serve(
            [str(bin_dir / "capi"), "serve", "--port", str(capi_port), *workers],
            env,
            workdir / "capi.log",
        )
        baseline = None
        baseline_port = find_free_port()
        if args.baseline_src:
            baseline = _serve(
                [str(bin_dir / "capi"), "serve", "--port", str(baseline_port), *workers],
                {**env, "TOPIC_MAIN": f"{topic}.baseline", "PYTHONPATH": args.baseline_src},
                workdir / "baseline.log",
            )
        peer_port, lean_port = find_free_port(), find_free_port()

        def reference(app: str, port: int, own_topic: str) -> subprocess.Popen[bytes]:
            """The peer or the lean reference: an app of bench/ on its own topic."""
            own_env = {
                **env,
                "PEER_BOOTSTRAP": broker.bootstrap_servers,
                "PEER_TOPIC": own_topic,
                "PEER_SECRET": SECRET,
            }
            log = workdir / f"{app.split(':')[0]}.log"
            return _serve(_uvicorn(app, port), own_env, log)

        peer = reference("peer_ingest:app", peer_port, peer_topic) if args.peer else None
        lean = reference("lean_ingest:app", lean_port, lean_topic) if args.lean else None
        hello = _serve(_uvicorn("ingest:hello_app", hello_port), env, workdir / "hello.log")
        try:
            _wait_http(capi_port)
            _wait_http(hello_port)
            broker_pid = broker.pid or 0
            results = {
                "hello": _drive(hello_port, "/", args, {"server": hello.pid, "broker": broker_pid}),
                "capi": _drive(
                    capi_port,
                    f"/webhooks/{tenant_id}/stripe",
                    args,
                    {"server": capi.pid, "broker": broker_pid},
                    workdir / "capi-profile.txt" if args.profile_seconds else None,
                ),
            }
            others = (
                ("capi_baseline", baseline, baseline_port),
                ("fastapi_peer", peer, peer_port),
                ("lean_reference", lean, lean_port),
            )
            for name, server, port in others:
                if server is not None:
                    _wait_http(port)
                    results[name] = _drive(
                        port,
                        f"/webhooks/{tenant_id}/stripe",
                        args,
                        {"server": server.pid, "broker": broker_pid},
                    )
        finally:
            _stop(capi)
            _stop(hello)
            if baseline is not None:
                _stop(baseline)
            if peer is not None:
                _stop(peer)
            if lean is not None:
                _stop(lean)
        acked = set(results["capi"].pop("acked"))
        results["hello"].pop("acked")
        if baseline is not None:
            results["capi_baseline"].pop("acked")
        on_topic = _topic_event_ids(broker.bootstrap_servers, topic)
        for name, own_topic in (("fastapi_peer", peer_topic), ("lean_reference", lean_topic)):
            if name in results:
                own_acked = set(results[name].pop("acked"))
                results[name]["acked_events"] = len(own_acked)
                results[name]["missing_on_topic"] = len(
                    own_acked - _topic_event_ids(broker.bootstrap_servers, own_topic)
                )
    missing = len(acked - on_topic)
    if args.profile_seconds:
        print(f"py-spy profile of capi serve: {workdir / 'capi-profile.txt'}")
    ratio = results["capi"]["rps"] / results["hello"]["rps"]
    print(f"{'target':<12} {'requests':>9} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9}  errors")
    print(_row("hello-world", results["hello"]))
    print(_row("capi serve", results["capi"]))
    if "capi_baseline" in results:
        print(_row("capi before", results["capi_baseline"]))
    if "fastapi_peer" in results:
        print(_row("fastapi peer", results["fastapi_peer"]))
    if "lean_reference" in results:
        print(_row("lean ref", results["lean_reference"]))
    print(
        f"ratio capi/hello: {ratio:.2f}   acked events: {len(acked)}, missing on topic: {missing}"
    )
    for name in ("fastapi_peer", "lean_reference"):
        if name in results:
            print(
                f"{name}: acked events: {results[name]['acked_events']}, "
                f"missing on topic: {results[name]['missing_on_topic']}"
            )
    for name in results:
        print(f"{name}: {describe(results[name]['cpu'])}".replace("us/event", "us/request"))
        print(f"  server threads, us/request: {results[name]['server_threads_us_per_request']}")
    server_us = {name: result["cpu"]["us_per_event"]["server"] for name, result in results.items()}
    capi_over_lean = lean_over_hello = None
    if "lean_reference" in results:
        capi_over_lean = server_us["capi"] / server_us["lean_reference"]
        lean_over_hello = server_us["lean_reference"] / max(1e-9, server_us["hello"])
        print(
            f"server CPU per request: capi/lean {capi_over_lean:.2f}, "
            f"lean/hello {lean_over_hello:.2f}"
        )
    summary = {
        "duration_seconds": args.duration,
        "connections": args.connections,
        "database": database_url.split(":", 1)[0],
        "cpus": os.cpu_count(),
        "results": results,
        "ratio": ratio,
        "workers": args.workers,
        "capi_cpu_over_hello_cpu": results["capi"]["cpu"]["us_per_event"]["server"]
        / max(1e-9, results["hello"]["cpu"]["us_per_event"]["server"]),
        "capi_rate_over_fastapi_peer_rate": results["capi"]["rps"] / results["fastapi_peer"]["rps"]
        if "fastapi_peer" in results
        else None,
        "capi_cpu_over_baseline_cpu": results["capi"]["cpu"]["us_per_event"]["server"]
        / results["capi_baseline"]["cpu"]["us_per_event"]["server"]
        if "capi_baseline" in results
        else None,
        "capi_cpu_over_lean_cpu": capi_over_lean,
        "lean_cpu_over_hello_cpu": lean_over_hello,
        "acked_events": len(acked),
        "missing_on_topic": missing,
    }
    results_path = RESULTS_DIR / args.results
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(summary, indent=2))
    if missing:
        sys.exit(f"{missing} acknowledged events are not on the topic")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--peer", action="store_true", help="also drive bench/peer_ingest.py")
    parser.add_argument("--lean", action="store_true", help="also drive bench/lean_ingest.py")
    parser.add_argument("--workers", type=int, default=1, help="capi serve --workers N")
    parser.add_argument(
        "--results", default="ingest.json", help="file name in bench/results, or a path"
    )
    parser.add_argument(
        "--profile-seconds", type=float, default=0.0, help="py-spy record capi serve this long"
    )
    parser.add_argument("--baseline-src", help="also drive capi serve from these sources")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--path", default="/", help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    parsed = _parser().parse_args()
    if parsed.load:
        _run_load(parsed)
    else:
        main(parsed)
