"""`capi` help: every command, at any depth, has -h, --version, a whole first sentence in
its group's list and a help text for every option; `set-meta` without a token and without
a terminal fails in one line (run as a real process, stdin from /dev/null or a pipe)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from ops.cli import cli, first_sentence, package_version
from storage.tenants import get_credentials
from tests.ops.test_cli_tenants import TOKEN, ok

ROOT = Path(__file__).resolve().parents[2]


def walk(
    command: click.Command, path: tuple[str, ...], ctx: click.Context
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, name
            yield from walk(sub, (*path, name), ctx)


COMMANDS = list(walk(cli, (), click.Context(cli)))


def test_the_walk_reaches_every_command() -> None:
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {
        "",
        "replay",
        "export",
        "status",
        "dlq list",
        "dlq show",
        "dlq redrive",
        "tenants set-meta",
        "migrate",
        "worker",
        "serve",
    } <= paths


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(path) or "capi" for path, _ in COMMANDS]
)
def test_every_command_has_complete_help(path: tuple[str, ...], command: click.Command) -> None:
    for flag in ("-h", "--help"):
        result = CliRunner().invoke(cli, [*path, flag])
        assert result.exit_code == 0, result.output
        assert result.output.startswith("Usage: ")
        text = result.output
    # No description cut with "...": only the usage line's own "[ARGS]..." may have one.
    cut = [line for line in text.splitlines()[1:] if line.rstrip().endswith("...")]
    assert cut == []
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            sub = command.get_command(click.Context(command), name)
            assert sub is not None and sub.help
            short = sub.get_short_help_str(limit=45)
            assert short == first_sentence(sub.help) and short.endswith(".")
            assert short in " ".join(text.split())  # shown whole (wrapped, never cut)
    missing = [
        param.opts for param in command.params if isinstance(param, click.Option) and not param.help
    ]
    assert missing == []
    version = CliRunner().invoke(cli, [*path, "--version"])
    assert (version.exit_code, version.output) == (0, f"capi {package_version()}\n")


def test_named_options_say_what_they_take() -> None:
    def help_of(*path: str) -> str:
        return " ".join(CliRunner().invoke(cli, [*path, "-h"]).output.split())

    for command in ("export", "replay"):
        text = help_of(command)
        assert "--from ISO-8601" in text and "2026-11-28T08:00+01:00" in text
        assert "Range end, excluded" in text and "Range start, included" in text
    assert "WORKER_METRICS_PORT, else 9108" in help_of("worker")
    assert "Avro file to write" in help_of("export")
    assert "Show at most N dead letters" in help_of("dlq", "list")
    assert "Alembic revision" in help_of("migrate")
    assert "--partitions" in help_of("status")


def capi(db_url: str, *args: str, stdin: int | str) -> subprocess.CompletedProcess[str]:
    """``capi`` as a user runs it: a real process whose stdin is /dev/null or a pipe."""
    env = {**os.environ, "DATABASE_URL": db_url, "PYTHONWARNINGS": "default"}
    command = [sys.executable, "-c", "from ops.cli import main; main()", *args]
    if isinstance(stdin, str):
        return subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,
            check=False,
        )
    return subprocess.run(
        command,
        stdin=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_set_meta_without_a_token_or_a_terminal_says_what_to_pass(
    db_url: str, session_factory: sessionmaker[Session]
) -> None:
    tenant = ok(db_url, "add", "--name", "Shop").split()[2]
    refused = capi(
        db_url, "tenants", "set-meta", tenant, "--pixel-id", "123", stdin=subprocess.DEVNULL
    )
    assert refused.returncode == 1, refused.stderr
    assert "GetPassWarning" not in refused.stderr and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines() == [
        "Error: no access token given: pass --access-token VALUE, or pipe it on stdin "
        "(e.g. `printenv META_TOKEN | capi tenants set-meta ...`)"
    ]
    piped = capi(db_url, "tenants", "set-meta", tenant, "--pixel-id", "123", stdin=f"{TOKEN}\n")
    assert piped.returncode == 0, piped.stderr
    assert "token EAAB…9xQ" in piped.stdout and TOKEN not in piped.stdout
    with session_factory() as session:
        stored = get_credentials(session, uuid.UUID(tenant), "meta")
    assert stored == {"pixel_id": "123", "capi_access_token": TOKEN}
