"""CPU of the Meta client per request and per event, against the emulator over loopback.

``python bench/meta_client.py [--sizes 50,200,1000] [--seconds 5]``

Starts the emulator in a subprocess (counts only), prepares real ``ServerEvent`` objects the
way the worker does (the worker benchmark's new-people templates), builds the client the way
the worker does, and posts requests of each size from one thread. ``time.thread_time`` of
that thread is the client's CPU (serialising, httpx, parsing the answer); the split says
how much of it is serialising the events and how much is one request's round trip. The
emulator's CPU is read from ``/proc``, for scale.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after PYTHONPATH: an older meta_capi can be measured beside
from bench import worker_backlog as data  # noqa: E402
from bench.cpu import cpu_seconds  # noqa: E402


def _events(count: int) -> list[Any]:
    from capi_stream.avro.codec import build_codec

    codec = build_codec()
    tenants = data.build_tenants(1)
    templates = data.build_templates(codec, tenants, new_people=True)
    values = list(data.iter_backlog(templates, 0, count))
    rows = data.prepare_rows(codec, values, {t.tenant_id: t.country for t in tenants})
    return [prepared.server_event for _, prepared in rows if prepared.server_event is not None]


def _measure(call: Any, seconds: float) -> tuple[float, int]:
    """Median thread CPU seconds of ``call()``, repeated for about ``seconds`` of wall time
    (the median: other processes on a busy machine inflate some calls' CPU)."""
    call()  # warm: connection open, caches filled
    times: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline or len(times) < 5:
        started = time.thread_time()
        call()
        times.append(time.thread_time() - started)
    return statistics.median(times), len(times)


def _send_all(client: Any, events: list[Any]) -> None:
    assert client.send_events(events).ok, "the emulator refused a request"


def _serialise_all(serialize: Any, events: list[Any]) -> None:
    for event in events:
        serialize(event)


def main() -> None:
    from capi_stream.kafka.broker import find_free_port
    from meta_capi import client as meta_client

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,200,1000")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    port = find_free_port()
    emulator = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "meta_capi.emulator", "--port", str(port), "--no-keep-events"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        events = _events(max(sizes))
        deadline = time.monotonic() + 20
        while True:
            try:
                import httpx

                httpx.get(f"http://127.0.0.1:{port}/_emulator/events", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        client = meta_client.MetaCAPIClient.from_tenant(
            {"pixel_id": "1000000000000", "capi_access_token": data.TOKEN},
            graph_url=f"http://127.0.0.1:{port}",
            timeout_seconds=1.5,
            partner_agent="capi-stream",
        )
        results: dict[str, Any] = {"client": meta_client.__file__}
        for size in sizes:
            batch = events[:size]
            emulator_before = cpu_seconds(emulator.pid) or 0.0
            total, runs = _measure(partial(_send_all, client, batch), args.seconds)
            emulator_cpu = ((cpu_seconds(emulator.pid) or 0.0) - emulator_before) / (runs + 1)
            serialise, _ = _measure(
                partial(_serialise_all, meta_client._serialize, batch), args.seconds / 5
            )
            results[str(size)] = {
                "requests": runs,
                "client_us_per_request": round(total * 1e6),
                "client_us_per_event": round(total * 1e6 / size, 1),
                "serialise_us_per_event": round(serialise * 1e6 / size, 1),
                "request_us_without_serialising": round((total - serialise) * 1e6),
                "emulator_us_per_event": round(emulator_cpu * 1e6 / size, 1),
            }
        client.close()
        print(json.dumps(results, indent=2))
    finally:
        emulator.terminate()
        emulator.wait(10)


if __name__ == "__main__":
    main()
