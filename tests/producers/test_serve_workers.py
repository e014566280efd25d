"""`capi serve --workers N`: uvicorn's worker processes each build the app from the factory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from capi_stream.kafka.broker import find_free_port, wait_for_port
from ops.cli import cli

CAPI = str(Path(sys.executable).parent / "capi")


def test_capi_serve_with_two_workers_serves_and_stops_on_sigterm(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'serve.db'}"
    assert CliRunner().invoke(cli, ["migrate"], env={"DATABASE_URL": database}).exit_code == 0
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TOPIC_MAIN": f"serve-{os.getpid()}-{time.monotonic_ns()}",
    }
    port = find_free_port()
    server = subprocess.Popen(
        [CAPI, "serve", "--port", str(port), "--workers", "2", "--publish-timeout", "7"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # the port opens before every worker process has built its app
            try:
                if httpx.get(f"{base}/readyz", timeout=10).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.1)
        for _ in range(20):  # whichever process answers, it is the whole app
            unknown = httpx.post(
                f"{base}/webhooks/00000000-0000-4000-8000-000000000000/stripe",
                content=b"{}",
                headers={"content-type": "application/json"},
            )
            assert unknown.status_code == 404
            assert unknown.json()["error"]["message"]
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) in (0, -signal.SIGTERM)
