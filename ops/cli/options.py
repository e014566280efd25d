"""Option parsers and help texts shared by several ``capi`` commands.

Every time range of the CLI (``export``, ``replay``) means the same thing: record
timestamps in ``[--from, --to)``, the end excluded, so consecutive ranges never overlap.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any, TypeVar

import click

__all__ = [
    "FROM_HELP",
    "INSTANT_METAVAR",
    "TO_HELP",
    "check_range",
    "parse_instant",
    "read_secret",
    "time_range_options",
]

CommandT = TypeVar("CommandT", bound=Callable[..., Any])

INSTANT_METAVAR = "ISO-8601"
_FORMATS = (
    "ISO 8601, e.g. 2026-11-28, 2026-11-28T08:00, 2026-11-28T08:00Z or "
    "2026-11-28T08:00+01:00; UTC when no offset is given"
)
FROM_HELP = f"Range start, included (record timestamp). {_FORMATS}."
TO_HELP = f"Range end, excluded (record timestamp). {_FORMATS}."


def parse_instant(_ctx: click.Context, param: click.Parameter, value: str) -> datetime:
    """Click callback: ISO 8601; a value without an offset is read as UTC (never local)."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date/time ({_FORMATS})", param=param
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def time_range_options(command: CommandT) -> CommandT:
    """``--from`` and ``--to`` (the ``start`` and ``end`` parameters), as every ranged
    command reads them."""
    start = click.option(
        "--from",
        "start",
        required=True,
        callback=parse_instant,
        metavar=INSTANT_METAVAR,
        help=FROM_HELP,
    )
    end = click.option(
        "--to", "end", required=True, callback=parse_instant, metavar=INSTANT_METAVAR, help=TO_HELP
    )
    return start(end(command))


def check_range(start: datetime, end: datetime, now: datetime | None = None) -> None:
    """Refuse an empty range and one that starts in the future (nothing can be in it yet).

    Raises:
        click.BadParameter: naming the option to fix.
    """
    if end <= start:
        raise click.BadParameter(
            f"must be after --from ({start.isoformat()}); the end is excluded", param_hint="--to"
        )
    moment = now or datetime.now(UTC)
    if start > moment:
        now_text = moment.replace(microsecond=0).isoformat()
        raise click.BadParameter(
            f"{start.isoformat()} is in the future (now is {now_text}); "
            "no record can be in the range yet",
            param_hint="--from",
        )


def _is_piped(stream: IO[str]) -> bool:
    """Input redirected on purpose (a pipe or a file), as opposed to /dev/null or nothing."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, io.UnsupportedOperation):
        return True  # an in-memory stream (Click's test runner): input given on purpose
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode)


def read_secret(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    """Click callback for a secret option: the value given, else typed at a terminal
    (hidden), else read from piped stdin (``... --pixel-id 1 < token.txt``).

    Without a terminal and without piped input there is nobody to ask: rather than
    ``getpass`` warning and aborting (exit 130), one line says what to pass.

    Raises:
        click.ClickException: no value, no terminal, nothing piped.
    """
    if value is not None or ctx.resilient_parsing:
        return value or ""
    flags: list[str] = list(param.opts) or [f"--{param.name}"]
    flag = max(flags, key=len)
    what = flag.lstrip("-").replace("-", " ")
    stdin = sys.stdin
    if stdin.isatty():
        return str(click.prompt(what.capitalize(), hide_input=True))
    piped = stdin.read().strip() if _is_piped(stdin) else ""
    if not piped:
        raise click.ClickException(
            f"no {what} given: pass {flag} VALUE, or pipe it on "
            f"stdin (e.g. `printenv META_TOKEN | capi {ctx.command_path.partition(' ')[2]} ...`)"
        )
    return piped
