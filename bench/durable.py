"""Does `make run` keep every webhook it answered 202 through a broker crash and a restart?

Runs the real `capi dev` (what `make run` starts) over a fresh data folder, sends signed
webhooks from a few client threads, SIGKILLs the embedded broker under that load, stops
`capi dev` with Ctrl-C, starts it again over the same folder and waits until the worker has
handled what the broker kept. An answered webhook is lost when no `meta_capi_events` row
ever appears for its event_id. Both storages: `EMBEDDED_BROKER_STORAGE=durable|memory`.

    .venv/bin/python bench/durable.py [--seconds 8] [--clients 4] [--storage both]
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
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, select

from capi_stream.kafka.broker import find_free_port
from devstack.demo import signed_headers
from devstack.payloads import BUILDERS
from devstack.seed import DemoTenant
from storage.models import MetaCapiEvent

REPO = Path(__file__).resolve().parents[1]
CAPI = str(Path(sys.executable).parent / "capi")


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


class DevRun:
    """One `capi dev` process over ``data``; its log goes to ``data/../run-N.log``."""

    def __init__(self, data: Path, storage: str, n: int) -> None:
        self.data = data
        env = {
            **os.environ,
            "DATA_DIR": str(data),
            "DATABASE_URL": f"sqlite:///{data / 'capi.db'}",
            "HTTP_PORT": str(find_free_port()),
            "WORKER_METRICS_PORT": "0",
            "EMBEDDED_BROKER_STORAGE": storage,
        }
        for name in ("KAFKA_BOOTSTRAP_SERVERS", "META_GRAPH_URL", "TOPIC_MAIN"):
            env.pop(name, None)
        self.log = data.parent / f"run-{n}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own CLI
                [CAPI, "dev"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        _wait(lambda: "demo:" in self.log.read_text(), 120, "the demo burst")
        self.state = json.loads((data / "dev.json").read_text())

    def broker_pid(self) -> int:
        """The Tansu child of this `capi dev` (found by parent pid, never by name)."""
        children = subprocess.run(  # noqa: S603
            ["pgrep", "-P", str(self.process.pid)],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        for pid in children:
            if "tansu" in Path(f"/proc/{pid}/cmdline").read_text():
                return int(pid)
        raise SystemExit("no broker child found")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(60)


def _load(url_of: Any, seconds: float, clients: int, kill_at: float, kill: Any) -> dict[str, Any]:
    tenant = DemoTenant()
    answered: list[tuple[str, float]] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    start = time.monotonic()
    stop_at = start + seconds

    def client(k: int) -> None:
        n = k * 1_000_000
        sources = sorted(BUILDERS)
        with httpx.Client(timeout=10) as http:
            while time.monotonic() < stop_at:
                source = sources[n % len(sources)]
                body = json.dumps(BUILDERS[source](n)).encode()
                n += 1
                t0 = time.perf_counter()
                try:
                    response = http.post(
                        url_of(tenant, source),
                        content=body,
                        headers=signed_headers(tenant, source, body),
                    )
                except httpx.HTTPError:
                    continue
                took = (time.perf_counter() - t0) * 1000
                with lock:
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    if response.status_code == 202:
                        answered.append((response.json()["event_id"], took))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    killed = False
    while any(t.is_alive() for t in threads):
        if not killed and time.monotonic() - start >= kill_at:
            kill()
            killed = True
        time.sleep(0.05)
    latencies = sorted(t for _, t in answered)
    return {
        "event_ids": sorted({e for e, _ in answered}),
        "statuses": statuses,
        "answered_202": len(answered),
        "rate_202_per_s": round(len(answered) / seconds, 1),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99)], 1) if latencies else None,
    }


def _rows(data: Path, event_ids: list[str]) -> dict[str, str]:
    engine = create_engine(f"sqlite:///{data / 'capi.db'}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(MetaCapiEvent.event_id, MetaCapiEvent.status)).all()
    finally:
        engine.dispose()
    wanted = set(event_ids)
    return {str(e): str(s) for e, s in rows if str(e) in wanted}


def run(storage: str, seconds: float, clients: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"durable-{storage}-") as tmp:
        data = Path(tmp) / "data"
        first = DevRun(data, storage, 1)
        base = first.state["webhook_url"]
        pid = first.broker_pid()
        load = _load(
            lambda tenant, source: tenant.webhook_url(base, source),
            seconds,
            clients,
            kill_at=seconds / 2,
            kill=lambda: os.kill(pid, signal.SIGKILL),
        )
        before_restart = _rows(data, load["event_ids"])
        first.stop()
        t0 = time.monotonic()
        second = DevRun(data, storage, 2)
        event_ids = load["event_ids"]
        deadline = time.monotonic() + 90
        found = _rows(data, event_ids)
        while len(found) < len(event_ids) and time.monotonic() < deadline:
            time.sleep(0.5)
            found = _rows(data, event_ids)
        settled = round(time.monotonic() - t0, 1)
        second.stop()
        lost = len(event_ids) - len(found)
        statuses: dict[str, int] = {}
        for status in found.values():
            statuses[status] = statuses.get(status, 0) + 1
        return {
            "storage": storage,
            **{k: v for k, v in load.items() if k != "event_ids"},
            "rows_before_restart": len(before_restart),
            "rows_after_restart": len(found),
            "lost_acknowledged": lost,
            "row_statuses": statuses,
            "restart_to_settled_s": settled,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--storage", choices=["durable", "memory", "both"], default="both")
    args = parser.parse_args()
    storages = ["durable", "memory"] if args.storage == "both" else [args.storage]
    results = [run(s, args.seconds, args.clients) for s in storages]
    out = REPO / "bench" / "results" / "durable.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
