"""`capi worker --processes N`: children started, signals forwarded, the first failure wins."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from consumers.supervisor import ChildSpec, child_specs

# A stand-in worker: marks itself started, exits 0 on SIGTERM/SIGINT after marking "stopped",
# or exits with the code in its argv once the file named there appears.
CHILD = """
import pathlib, signal, sys, time
marks = pathlib.Path(sys.argv[1])
name = sys.argv[2]
def stop(signum, frame):
    (marks / f"{name}.stopped-{signum}").write_text("")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
(marks / f"{name}.started").write_text("")
while True:
    trigger = marks / f"{name}.fail"
    if trigger.exists():
        sys.exit(int(trigger.read_text()))
    time.sleep(0.05)
"""

SUPERVISOR = """
import sys
from consumers.supervisor import ChildSpec, supervise
marks = sys.argv[1]
specs = [ChildSpec((sys.executable, "-c", sys.argv[2], marks, f"c{i}")) for i in range(2)]
sys.exit(supervise(specs, grace_seconds=30))
"""


def wait_for(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not callable(condition) or not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.05)


def start(marks: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(marks), CHILD])
    wait_for(lambda: (marks / "c0.started").exists() and (marks / "c1.started").exists())
    return process


def test_sigterm_reaches_every_worker_and_the_supervisor_exits_0(tmp_path: Path) -> None:
    supervisor = start(tmp_path)
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(60) == 0
    for name in ("c0", "c1"):
        assert (tmp_path / f"{name}.stopped-{int(signal.SIGTERM)}").exists()


def test_a_worker_that_fails_stops_the_others_and_sets_the_exit_code(tmp_path: Path) -> None:
    supervisor = start(tmp_path)
    (tmp_path / "c1.fail").write_text("3")  # e.g. the dead-letter limit
    assert supervisor.wait(60) == 3
    assert (tmp_path / f"c0.stopped-{int(signal.SIGTERM)}").exists()


def test_each_child_gets_its_own_metrics_port() -> None:
    specs = child_specs(3, ["--tiers", "all"], 9108)
    assert [spec.argv[-1] for spec in specs] == ["9108", "9109", "9110"]
    assert all(spec.argv[1:5] == ("-m", "consumers.cli", "--tiers", "all") for spec in specs)
    assert {spec.argv[-1] for spec in child_specs(2, [], 0)} == {"0"}
    assert isinstance(specs[0], ChildSpec)
