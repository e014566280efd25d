"""The README's journeys run as written against a real `make run` stack.

Every ``python`` and ``bash`` block of the producing-service and analyst sections is taken
from README.md and run as a user would: in another directory than the clone (the stack must
be found from anywhere), with ``capi`` on PATH the way the README says. Published events must
reach the Meta emulator and be recorded as sent, not dead-lettered.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from capi_stream.database import build_engine, build_session_factory
from capi_stream.kafka.broker import find_free_port
from devstack.seed import DemoTenant
from storage.models import MetaCapiEvent

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SECTIONS = ("## For producing services", "## For analysts")


def readme_blocks(language: str) -> list[str]:
    """The ``language`` code blocks of the README's producing-service and analyst parts."""
    text = (REPO / "README.md").read_text()
    blocks: list[str] = []
    for heading in SECTIONS:
        start = text.index(heading)
        end = text.find("\n## ", start + len(heading))
        section = text[start : end if end != -1 else len(text)]
        blocks += re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)
    return blocks


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def stop(process: subprocess.Popen[bytes]) -> int:
    """Ctrl-C to `capi dev` (make's child), as a user would; make exits with its status."""
    children = subprocess.run(
        ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    for pid in children or [str(process.pid)]:
        os.kill(int(pid), signal.SIGINT)
    return process.wait(30)


@dataclass(frozen=True)
class Stack:
    env: dict[str, str]
    home: Path
    state: dict[str, object]
    log_path: Path


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """A running `make run` whose data folder is ``<home>/data``."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "DATA_DIR": str(home / "data"),
        "CAPI_STATE_DIR": str(tmp_path / "stacks"),
        "HTTP_PORT": str(find_free_port()),
        "WORKER_METRICS_PORT": "0",
    }
    # As on a fresh machine: no key set (make run keeps its own in data/secrets.key).
    for name in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "META_GRAPH_URL",
        "TOPIC_MAIN",
        "DATABASE_URL",
        "CAPI_SECRETS_KEY",
    ):
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
        wait_for(lambda: "Running." in log_path.read_text(), 120, "make run to be ready")
        assert "export CAPI_STACK=" in log_path.read_text()
        (state_file,) = (tmp_path / "stacks").glob("*.json")
        yield Stack(env, home, json.loads(state_file.read_text()), log_path)
    finally:
        exit_code = stop(process)
    assert exit_code == 0, log_path.read_text()
    assert not list((tmp_path / "stacks").glob("*.json")), "the state file outlived the stack"


def delivered(state: dict[str, object], event_id: str) -> bool:
    """The emulator holds the event and its row says sent (not dead-lettered, not expired)."""
    url = f"{state['emulator_url']}/_emulator/events"
    events = httpx.get(url, params={"pixel_id": DemoTenant().pixel_id}).json()["events"]
    if not any(e["payload"]["event_id"] == event_id for e in events):
        return False
    engine = build_engine(str(state["database_url"]))
    try:
        with build_session_factory(engine)() as session:
            status = session.scalar(
                select(MetaCapiEvent.status).where(MetaCapiEvent.event_id == event_id)
            )
    finally:
        engine.dispose()
    return str(status) == "sent"


def test_readme_journeys_work_as_written_from_another_directory(stack: Stack) -> None:
    env, home, state = stack.env, stack.home, stack.state
    # The README: `source .venv/bin/activate` puts capi on PATH. The user's shell knows
    # nothing of the stack's DATA_DIR: commands find the stack (and its key) themselves.
    user_env = {k: v for k, v in env.items() if k != "DATA_DIR"}
    user_env["PATH"] = f"{VENV_BIN}{os.pathsep}{env['PATH']}"
    elsewhere = home.parent / "elsewhere"
    elsewhere.mkdir()
    python_blocks, bash_blocks = readme_blocks("python"), readme_blocks("bash")
    assert python_blocks and bash_blocks

    for block in python_blocks:
        run = subprocess.run(
            [sys.executable, "-c", block],
            cwd=elsewhere,
            env=user_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        event_id = run.stdout.split()[-1]
        wait_for(partial(delivered, state, event_id), 60, f"README event {event_id} sent")

    outputs = []
    for block in bash_blocks:
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            env=user_env,
            cwd=home if "data/" in block else elsewhere,  # `data/...` is the clone's folder
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, f"{block}\n{run.stdout}{run.stderr}"
        outputs.append(run.stdout)
        if block.startswith("capi publish"):
            event_id = run.stdout.split()[-1]
            wait_for(partial(delivered, state, event_id), 60, f"published {event_id} sent")
    assert any("Meta accepted the test event: events_received=1" in o for o in outputs)


def test_a_second_stack_on_the_same_data_folder_is_refused(stack: Stack) -> None:
    env, home = stack.env, stack.home
    second = subprocess.run(
        [str(VENV_BIN / "capi"), "dev", "--no-demo"],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 2, second.stdout + second.stderr
    assert f"a stack already runs on {home / 'data'}" in second.stderr, second.stderr
    assert "DATA_DIR=" in second.stderr
    # The refused one left the running stack's file alone: it is still found.
    status = subprocess.run(
        [str(VENV_BIN / "capi"), "status", "--no-kafka", "--json"],
        cwd=REPO.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["events"], "the demo burst's rows, read from elsewhere"


def test_the_dev_terminal_shows_dead_letters_and_rejected_webhooks_with_reasons(
    stack: Stack,
) -> None:
    unknown = "0f0f0f0f-0000-4000-8000-000000000001"
    event = {
        "tenant_id": unknown,
        "source": "api",
        "source_event_id": "nobody-1",
        "event_name": "Lead",
        "event_time": datetime.now(UTC).isoformat(),
        "action_source": "other",
        "user": {"emails": ["jane@example.com"]},
    }
    path = stack.home / "unknown-tenant.json"
    path.write_text(json.dumps(event))
    published = subprocess.run(
        [str(VENV_BIN / "capi"), "publish", str(path)],
        cwd=stack.home,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert published.returncode == 0, published.stderr
    event_id = published.stdout.split()[-1]
    tenant = DemoTenant()
    answer = httpx.post(
        tenant.webhook_url(str(stack.state["webhook_url"]), "chatbot"),
        content=b'{"subscriber_id": "1"}',
        headers={"content-type": "application/json", "x-capi-secret": "wrong"},
    )
    assert answer.status_code == 401, answer.text

    def shown(text: str) -> Callable[[], bool]:
        return lambda: text in stack.log_path.read_text()

    wait_for(shown(f"dead-lettered event {event_id} (api)"), 60, "the dead-letter line")
    wait_for(shown("webhook rejected chatbot answered 401"), 30, "the rejection line")
    log = stack.log_path.read_text()
    line = next(x for x in log.splitlines() if f"dead-lettered event {event_id}" in x)
    assert "UnknownTenantError" in line and f"unknown tenant {unknown}" in line, line
