"""`capi worker --processes N`: N worker processes in one consumer group, one per core.

One Python process holds the GIL most of the time it works, so a pod with several cores uses
them only with several processes. The supervisor starts N ``capi worker`` processes (the same
options; each its own consumer-group member, so the group spreads the partitions over them),
forwards SIGTERM and SIGINT to all of them, and waits. When one exits on its own, whatever
the code, the others are stopped too and the supervisor exits with the first code that was
not 0: the platform restarts the pod as a whole, as it would restart a single worker.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

__all__ = ["ChildSpec", "child_specs", "supervise"]

_POLL_SECONDS = 0.2
STOP_GRACE_SECONDS = 60.0  # a batch in flight finishes and commits before the group is left


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One worker process: its command line."""

    argv: tuple[str, ...]


def child_specs(processes: int, options: Sequence[str], metrics_port: int) -> list[ChildSpec]:
    """The command lines of ``processes`` workers with ``options``.

    Each child needs its own health/metrics port: ``metrics_port`` + i, or 0 (any free port,
    logged at start) for every child when ``metrics_port`` is 0.
    """
    specs = []
    for index in range(processes):
        port = 0 if not metrics_port else metrics_port + index
        argv = (sys.executable, "-m", "consumers.cli", *options, "--metrics-port", str(port))
        specs.append(ChildSpec(argv))
    return specs


def _stop_all(
    children: Sequence[subprocess.Popen[bytes]], signum: int, signalled: set[int]
) -> None:
    # Once each: a second signal could reach a child while its interpreter is finalising
    # (default handlers again) and kill a clean shutdown.
    for child in children:
        if child.poll() is None and child.pid not in signalled:
            signalled.add(child.pid)
            child.send_signal(signum)


def supervise(specs: Sequence[ChildSpec], grace_seconds: float = STOP_GRACE_SECONDS) -> int:
    """Run the children until all have exited; returns the exit code for the supervisor."""
    children: list[subprocess.Popen[bytes]] = []
    stopping: list[int] = []
    signalled: set[int] = set()

    def forward(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)  # the loop in _wait passes it on: one place sends signals

    # Handlers first: a signal during start-up must not kill the supervisor and orphan them.
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for spec in specs:
            if not stopping:
                # Their own process group: a terminal's Ctrl-C reaches them once, through us.
                children.append(subprocess.Popen(spec.argv, process_group=0))  # noqa: S603
        code = _wait(children, stopping, signalled, grace_seconds)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def _wait(
    children: Sequence[subprocess.Popen[bytes]],
    stopping: list[int],
    signalled: set[int],
    grace_seconds: float,
) -> int:
    first_failure = 0
    deadline: float | None = None
    while True:
        codes = [child.poll() for child in children]
        for code in codes:
            if code is not None and code != 0 and not first_failure:
                first_failure = code if code > 0 else 128 - code  # killed: 128 + signal
        if all(code is not None for code in codes):
            return first_failure
        if deadline is None and (stopping or any(code is not None for code in codes)):
            # We were told to stop (pass the signal on), or one left on its own (the rest
            # follow, gracefully).
            _stop_all(children, stopping[0] if stopping else signal.SIGTERM, signalled)
            deadline = time.monotonic() + grace_seconds
        if deadline is not None and time.monotonic() > deadline:
            for child in children:
                if child.poll() is None:
                    child.kill()
        time.sleep(_POLL_SECONDS)
