"""`make run` end to end: the whole stack starts, the demo reaches the emulator, Ctrl-C stops it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from capi_stream.kafka.broker import find_free_port
from devstack.demo import signed_headers
from devstack.payloads import BUILDERS
from devstack.seed import DemoTenant

REPO = Path(__file__).resolve().parents[2]


def _wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_make_run_carries_webhooks_to_the_emulator_and_stops_cleanly(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'capi.db'}",
        "HTTP_PORT": str(find_free_port()),
        "WORKER_METRICS_PORT": "0",
        "CAPI_STATE_DIR": str(tmp_path / "stacks"),
    }
    # Without CAPI_SECRETS_KEY the dev stack makes and keeps its own key under data/.
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "META_GRAPH_URL", "TOPIC_MAIN", "CAPI_SECRETS_KEY"):
        env.pop(name, None)
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["make", "-s", "run"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for(lambda: "demo:" in log_path.read_text(), 90, "the demo burst")
        output = log_path.read_text()
        assert "demo: 10/10 events accepted by Meta" in output, output

        (state_file,) = (tmp_path / "stacks").glob("*.json")
        state = json.loads(state_file.read_text())
        tenant = DemoTenant()
        events_url = f"{state['emulator_url']}/_emulator/events"
        accepted = httpx.get(events_url, params={"pixel_id": tenant.pixel_id}).json()
        assert len(accepted["events"]) == 10

        body = json.dumps(BUILDERS["chatbot"](777_001)).encode()
        answer = httpx.post(
            tenant.webhook_url(state["webhook_url"], "chatbot"),
            content=body,
            headers=signed_headers(tenant, "chatbot", body),
        )
        assert answer.status_code == 202, answer.text
        event_id = answer.json()["event_id"]

        def delivered() -> bool:
            events = httpx.get(events_url, params={"pixel_id": tenant.pixel_id}).json()["events"]
            return any(e["payload"]["event_id"] == event_id for e in events)

        _wait_for(delivered, 30, "the curl-style webhook to reach the emulator")

        demo = subprocess.run(  # `capi demo` finds the running stack from any directory
            [str(REPO / ".venv" / "bin" / "capi"), "demo", "--per-source", "1"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "demo: 5/5 events accepted by Meta" in demo.stdout, demo.stdout
    finally:
        # Ctrl-C reaches `capi dev` (make's child); make then exits with its status.
        children = subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        for pid in children or [str(process.pid)]:
            os.kill(int(pid), signal.SIGINT)
        exit_code = process.wait(30)
    assert exit_code == 0, log_path.read_text()
    assert "stopped cleanly" in log_path.read_text()
    assert not list((tmp_path / "stacks").glob("*.json")), "the state file outlived the stack"
    key_file = tmp_path / "data" / "secrets.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    database = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("capi.db*"))
    for secret in (DemoTenant().access_token, DemoTenant().shared_secret):
        assert secret.encode() not in database  # sealed at rest, key kept beside the data
