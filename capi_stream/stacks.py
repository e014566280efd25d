"""Running `make run` stacks, announced in a per-user state folder so any directory finds them.

Each stack claims ``<CAPI_STATE_DIR>/<id>.json``, the id derived from its absolute data
folder: two clones never share a file, stopping one never removes the other's, and a second
stack on the same data folder is refused while the first one lives. A command without
``KAFKA_BOOTSTRAP_SERVERS`` uses, in order: the stack ``CAPI_STACK`` names, the stack of its
own data folder, else the only stack running.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from capi_stream.errors import ConfigurationError
from capi_stream.settings import CapiSettings

__all__ = [
    "StackAlreadyRunningError",
    "StackState",
    "announce_stack",
    "claim_stack",
    "find_stack",
    "live_stacks",
    "release_stack",
    "stack_file",
]


class StackAlreadyRunningError(ConfigurationError):
    """A stack already runs on this data folder; a second one would share its database."""


@dataclass(frozen=True, slots=True)
class StackState:
    """What a running stack announces; ``ready`` once everything accepts traffic."""

    pid: int
    data_dir: str
    ready: bool = False
    kafka_bootstrap_servers: str = ""
    kafka_kind: str = ""
    database_url: str = ""
    webhook_url: str = ""
    meta_graph_url: str = ""
    emulator_url: str | None = None
    worker_health_url: str | None = None
    tenant_id: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _read(path: Path) -> StackState | None:
    try:
        raw = json.loads(path.read_text())
        return StackState(**raw)
    except (OSError, ValueError, TypeError):
        return None  # half-written, foreign or from an older version: not a stack we know


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but it exists
    return True


def stack_file(settings: CapiSettings) -> Path:
    """The state file of the stack whose data folder is ``settings.data_dir``."""
    data_dir = str(Path(settings.data_dir).resolve())
    digest = hashlib.sha256(data_dir.encode()).hexdigest()[:12]
    return settings.stack_state_dir() / f"{digest}.json"


def live_stacks(settings: CapiSettings) -> list[tuple[Path, StackState]]:
    """Every announced stack whose process still runs, oldest file first."""
    folder = settings.stack_state_dir()
    if not folder.is_dir():
        return []
    found: list[tuple[float, Path, StackState]] = []
    for path in folder.glob("*.json"):
        state = _read(path)
        try:
            started = path.stat().st_mtime
        except FileNotFoundError:
            continue  # its stack stopped while we looked
        if state is not None and _alive(state.pid):
            found.append((started, path, state))
    return [(path, state) for _, path, state in sorted(found, key=lambda x: x[0])]


def _named(settings: CapiSettings, name: str) -> StackState:
    path = Path(name)
    if not path.is_file():
        path = settings.stack_state_dir() / f"{name.removesuffix('.json')}.json"
    state = _read(path) if path.is_file() else None
    if state is None or not _alive(state.pid) or not state.ready:
        raise ConfigurationError(
            f"CAPI_STACK={name} names no running stack (stopped?): unset CAPI_STACK, "
            "or start one with `make run` and use the CAPI_STACK it prints"
        )
    return state


def find_stack(settings: CapiSettings) -> StackState | None:
    """The running stack this process should use, or None when none runs.

    Raises:
        ConfigurationError: ``CAPI_STACK`` names no running stack, or several run and
            none is this data folder's.
    """
    if settings.capi_stack:
        return _named(settings, settings.capi_stack)
    stacks = [(path, state) for path, state in live_stacks(settings) if state.ready]
    own = stack_file(settings)
    for path, state in stacks:
        if path == own:
            return state
    if len(stacks) == 1:
        return stacks[0][1]
    if stacks:
        listed = " or ".join(
            f"export CAPI_STACK={path} ({state.data_dir})" for path, state in stacks
        )
        raise ConfigurationError(f"{len(stacks)} stacks run; pick one: {listed}")
    return None


def claim_stack(settings: CapiSettings) -> Path:
    """Claim this data folder's state file for the current process.

    Raises:
        StackAlreadyRunningError: a live stack holds it.
    """
    path = stack_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    data_dir = str(Path(settings.data_dir).resolve())
    for _attempt in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            other = _read(path)
            if other is not None and _alive(other.pid) and other.pid != os.getpid():
                raise StackAlreadyRunningError(
                    f"a stack already runs on {data_dir} (pid {other.pid}); stop it with "
                    "Ctrl-C, or run a second one on its own folder: DATA_DIR=data2 make run"
                ) from None
            path.unlink(missing_ok=True)  # left by a stack that died without cleaning up
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(StackState(pid=os.getpid(), data_dir=data_dir).to_json())
        return path
    raise StackAlreadyRunningError(f"another stack is starting on {data_dir}; try again")


def announce_stack(path: Path, state: StackState) -> None:
    """Publish a claimed stack's addresses (atomically: readers never see half a file)."""
    partial = path.with_suffix(".tmp")
    partial.write_text(state.to_json())
    partial.replace(path)


def release_stack(path: Path) -> None:
    """Remove the state file, but only while it is still this process's own."""
    state = _read(path)
    if state is not None and state.pid == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
