"""Running stacks in the state folder: found from anywhere, never clobbered, never confused."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest

from capi_stream.errors import ConfigurationError
from capi_stream.runtime import resolve_settings
from capi_stream.settings import CapiSettings
from capi_stream.stacks import (
    StackAlreadyRunningError,
    StackState,
    announce_stack,
    claim_stack,
    find_stack,
    release_stack,
    stack_file,
)


def settings_for(tmp_path: Path, data_dir: str, **extra: str) -> CapiSettings:
    fields = {"data_dir": str(tmp_path / data_dir), "capi_state_dir": str(tmp_path / "stacks")}
    return CapiSettings(**cast(dict[str, Any], {**fields, **extra}))


def running(settings: CapiSettings, pid: int, bootstrap: str) -> Path:
    """A ready stack of ``settings.data_dir`` owned by ``pid`` (written as that stack would)."""
    path = stack_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = StackState(
        pid=pid,
        data_dir=settings.data_dir,
        ready=True,
        kafka_bootstrap_servers=bootstrap,
        database_url=f"sqlite:///{settings.data_dir}/capi.db",
        meta_graph_url="http://emu",
    )
    announce_stack(path, state)
    return path


def bootstrap_of(settings: CapiSettings) -> str:
    stack = find_stack(settings)
    assert stack is not None
    return stack.kafka_bootstrap_servers


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_stack_is_found_from_another_data_folder_with_its_database(tmp_path: Path) -> None:
    clone = settings_for(tmp_path, "clone/data")
    running(clone, os.getppid(), "127.0.0.1:9")
    elsewhere = settings_for(tmp_path, "elsewhere/data")
    found = resolve_settings(elsewhere)
    assert found.kafka_bootstrap_servers == "127.0.0.1:9"
    assert found.database_url == f"sqlite:///{clone.data_dir}/capi.db"
    assert found.meta_graph_url == "http://emu"
    # Configured settings win: a real cluster is never paired with the dev database.
    configured = settings_for(tmp_path, "x", kafka_bootstrap_servers="kafka:9092")
    assert resolve_settings(configured) == configured


def test_two_stacks_each_have_their_own_file_and_the_choice_is_explicit(tmp_path: Path) -> None:
    one, two = settings_for(tmp_path, "one/data"), settings_for(tmp_path, "two/data")
    first = running(one, os.getppid(), "127.0.0.1:1001")
    second = running(two, os.getpid(), "127.0.0.1:1002")
    assert first != second
    assert bootstrap_of(one) == "127.0.0.1:1001"  # its own data folder's stack first
    with pytest.raises(
        ConfigurationError,
        match="2 stacks run; pick one: export CAPI_STACK=.* or export CAPI_STACK=",
    ):
        find_stack(settings_for(tmp_path, "third/data"))
    chosen = settings_for(tmp_path, "third/data", capi_stack=str(second))
    assert bootstrap_of(chosen) == "127.0.0.1:1002"
    # Stopping one (this process owns `second`) leaves the other's file alone.
    release_stack(second)
    release_stack(first)  # not ours: kept
    assert not second.exists() and first.exists()


def test_a_second_claim_on_one_data_folder_is_refused_a_dead_ones_file_is_taken(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, "clone/data")
    running(settings, os.getppid(), "127.0.0.1:9")
    with pytest.raises(StackAlreadyRunningError, match="a stack already runs on .* DATA_DIR="):
        claim_stack(settings)
    running(settings, dead_pid(), "127.0.0.1:9")
    assert find_stack(settings) is None  # a dead stack is never used
    path = claim_stack(settings)
    assert StackState(**json.loads(path.read_text())).pid == os.getpid()
    release_stack(path)
    assert not path.exists()


def test_capi_stack_naming_no_running_stack_says_so(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "d", capi_stack=str(tmp_path / "gone.json"))
    with pytest.raises(ConfigurationError, match="CAPI_STACK=.* names no running stack"):
        find_stack(settings)
