"""The long-running commands as a user starts them: `capi migrate`, `meta-emulator`, `serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import inspect

from capi_stream.database import build_engine
from capi_stream.kafka.broker import find_free_port, wait_for_port
from ops.cli import cli
from tests.support.emulator_fixture import PIXEL_ID, TOKEN, make_event

CAPI = str(Path(sys.executable).parent / "capi")


def test_capi_migrate_builds_and_is_idempotent(db_url: str, tmp_path: Path) -> None:
    fresh = f"sqlite:///{tmp_path / 'new.db'}"
    for url in (fresh, fresh, db_url):  # a new database, the same again, an existing one
        result = CliRunner().invoke(cli, ["migrate"], env={"DATABASE_URL": url})
        assert result.exit_code == 0, result.output
        assert "is at head" in result.output
    engine = build_engine(fresh)
    assert "meta_capi_events" in inspect(engine).get_table_names()
    engine.dispose()


Start = Callable[[list[str], dict[str, str]], int]


@pytest.fixture
def start_command() -> Iterator[Start]:
    """Start ``capi <argv> --port N`` and return N; at the end SIGTERM must stop it promptly.

    uvicorn shuts down gracefully on SIGTERM, then re-raises the signal, so the exit status
    is -SIGTERM (what process supervisors expect), not a crash.
    """
    processes: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], env: dict[str, str]) -> int:
        port = find_free_port()
        processes.append(
            subprocess.Popen(
                [CAPI, *argv, "--port", str(port)],
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
        )
        wait_for_port("127.0.0.1", port, timeout=20)
        return port

    yield start
    for process in processes:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) in (0, -signal.SIGTERM)


def test_capi_meta_emulator_answers_like_meta(start_command: Start) -> None:
    port = start_command(["meta-emulator"], {})
    answer = httpx.post(
        f"http://127.0.0.1:{port}/v26.0/{PIXEL_ID}/events",
        json={"data": [make_event()], "access_token": TOKEN},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["events_received"] == 1
    stale = make_event(event_time=int(time.time()) - 8 * 86_400)
    refused = httpx.post(
        f"http://127.0.0.1:{port}/v26.0/{PIXEL_ID}/events",
        json={"data": [stale], "access_token": TOKEN},
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["error_subcode"] == 2804003


def test_capi_serve_is_healthy_and_ready(
    start_command: Start, kafka_bootstrap: str, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'serve.db'}"
    assert CliRunner().invoke(cli, ["migrate"], env={"DATABASE_URL": database}).exit_code == 0
    env = {
        "DATABASE_URL": database,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TOPIC_MAIN": f"serve-{os.getpid()}-{time.monotonic_ns()}",
    }
    port = start_command(["serve"], env)
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/healthz").status_code == 200
    assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
    assert "/webhooks/{tenant_id}/{source}" in httpx.get(f"{base}/openapi.json").json()["paths"]
    unknown = httpx.post(
        f"{base}/webhooks/00000000-0000-4000-8000-000000000000/stripe",
        content=b"{}",
        headers={"content-type": "application/json"},
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"]
