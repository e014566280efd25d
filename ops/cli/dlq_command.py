"""`capi dlq list|show|redrive`: inspect dead letters and send chosen ones back."""

from __future__ import annotations

import getpass
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from capi_stream.runtime import Runtime, build_runtime
from capi_stream.settings import CapiSettings
from ops.dlq.reader import (
    DeadLetterFilter,
    Header,
    RecordRef,
    RedriveOptions,
    RedriveReport,
    decode_dead_letter,
    find_dead_letters,
    list_dead_letters,
    now_ms,
    parse_duration,
    parse_ref,
    redrive_dead_letters,
)


def _duration(_ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None


def _filters(function: click.decorators.FC) -> click.decorators.FC:
    for decorator in reversed(
        [
            click.option("--tenant", help="Tenant id (capi-tenant-id header)."),
            click.option("--event-name", help="e.g. Purchase."),
            click.option("--error-code", help="Meta error code, e.g. 190."),
            click.option("--older-than", callback=_duration, help="In the DLQ longer, e.g. 2h."),
            click.option("--newer-than", callback=_duration, help="In the DLQ less, e.g. 30m."),
        ]
    ):
        function = decorator(function)
    return function


def _selection(
    tenant: str | None,
    event_name: str | None,
    error_code: str | None,
    older_than: timedelta | None,
    newer_than: timedelta | None,
) -> DeadLetterFilter:
    return DeadLetterFilter(tenant, event_name, error_code, older_than, newer_than)


def _runtime() -> Runtime:
    return build_runtime(CapiSettings(), database="lazy")  # `dlq list` reads Kafka only


def _age(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


# Headers holding epoch milliseconds: shown as ISO 8601 UTC (the raw value in brackets).
_INSTANT_HEADERS = frozenset({Header.FAILED_AT, Header.ORIGINAL_TIMESTAMP, Header.DUE_MS})


def format_instant(epoch_ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC to the millisecond, e.g. 2026-12-07T01:02:03.456Z."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _header_text(name: str, value: str) -> str:
    if name not in _INSTANT_HEADERS or not value.isdigit():
        return value
    return f"{format_instant(int(value))} ({value})"


@click.group()
def dlq() -> None:
    """Inspect and redrive dead letters (the capi.events.dlq topic)."""


@dlq.command("list")
@_filters
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Show at most N dead letters (oldest first); the title still counts all.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(limit: int, as_json: bool, **filters: Any) -> None:
    """List dead letters with their reason, attempts, origin, age, tenant and event."""
    runtime = _runtime()
    try:
        moment = now_ms()
        letters = list_dead_letters(
            runtime.kafka, runtime.topics.dlq, _selection(**filters), moment
        )
    finally:
        runtime.engine.dispose()
    if as_json:
        rows = [
            {
                "ref": str(d.ref),
                "reason": d.reason,
                "attempts": d.attempts,
                "origin": d.origin,
                "age_seconds": d.age(moment).total_seconds(),
                "dead_lettered_at": format_instant(d.timestamp_ms),
                "tenant_id": d.tenant_id,
                "event_name": d.event_name,
                "event_id": d.event_id,
                "headers": dict(d.headers),
            }
            for d in letters[:limit]
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(letters)} dead letter(s) in {runtime.topics.dlq}")
    for column in ("ref", "age", "tenant", "event", "attempts", "reason", "origin"):
        table.add_column(column, overflow="fold")
    for letter in letters[:limit]:
        table.add_row(
            str(letter.ref),
            _age(letter.age(moment)),
            letter.tenant_id or "-",
            letter.event_name or "-",
            str(letter.attempts or "-"),
            letter.reason,
            letter.origin,
        )
    Console(width=200).print(table)


@dlq.command("show")
@click.argument("target")
def show_command(target: str) -> None:
    """Show a dead letter's headers and decoded event (hashed data only).

    TARGET is TOPIC:PARTITION:OFFSET or a CAPI event id.
    """
    runtime = _runtime()
    try:
        letters = find_dead_letters(runtime.kafka, runtime.topics.dlq, target)
    finally:
        runtime.engine.dispose()
    if not letters:
        raise click.ClickException(f"no dead letter {target}")
    console = Console(width=160)
    for letter in letters:
        table = Table(title=f"dead letter {letter.ref}")
        table.add_column("header")
        table.add_column("value", overflow="fold")
        table.add_row("(record timestamp)", format_instant(letter.timestamp_ms))
        for name, value in sorted(letter.headers.items()):
            table.add_row(name, _header_text(name, value))
        console.print(table)
        event = decode_dead_letter(runtime.codec, letter)
        if event is None:
            click.echo(f"value: {len(letter.value)} undecodable byte(s) (kept as received)")
        else:
            click.echo(json.dumps(event, indent=2, sort_keys=True))


@dlq.command("redrive")
@click.argument("refs", nargs=-1)
@_filters
@click.option("--all", "select_all", is_flag=True, help="Redrive every dead letter (no filter).")
@click.option("--dry-run", is_flag=True, help="Decide and audit, but send and commit nothing.")
@click.option("--rate", type=click.FloatRange(min=0.01), help="At most N records per second.")
@click.option("--max-redrives", type=int, default=3, show_default=True, help="Loop guard.")
@click.option("--actor", help="Who is redriving (default $USER).")
@click.option("--group", "group_id", help="Progress consumer group (default: per selection).")
@click.option("--from-beginning", is_flag=True, help="Ignore saved progress; rescan the DLQ.")
def redrive_command(
    refs: tuple[str, ...],
    select_all: bool,
    dry_run: bool,
    rate: float | None,
    max_redrives: int,
    actor: str | None,
    group_id: str | None,
    from_beginning: bool,
    **filters: Any,
) -> None:
    """Send dead letters back to the main topic with a fresh attempt budget.

    Give REFS (TOPIC:PARTITION:OFFSET) or filters; --all is needed to redrive everything.
    """
    parsed: list[RecordRef] = []
    for text in refs:
        ref = parse_ref(text)
        if ref is None:
            raise click.BadParameter(f"{text!r} is not TOPIC:PARTITION:OFFSET", param_hint="REFS")
        parsed.append(ref)
    selection = _selection(**filters)
    if not parsed and not select_all and selection == DeadLetterFilter():
        raise click.UsageError("name dead letters (REFS), give a filter, or pass --all")
    who = actor or os.environ.get("USER") or getpass.getuser()
    runtime = _runtime()
    try:
        options = RedriveOptions(
            actor=who,
            target_topic=runtime.topics.main,
            max_redrives=max_redrives,
            dry_run=dry_run,
            rate=rate,
            group_id=group_id,
            from_beginning=from_beginning,
            refs=tuple(parsed),
        )
        report = redrive_dead_letters(
            runtime.kafka, runtime.topics.dlq, runtime.codec, runtime.sessions, selection, options
        )
    finally:
        runtime.engine.dispose()
    table = Table(title=f"redrive to {runtime.topics.main}" + (" (dry run)" if dry_run else ""))
    for column in ("ref", "outcome", "event id", "reason"):
        table.add_column(column, overflow="fold")
    for item in report.items:
        outcome = "would redrive" if item.outcome == "dry-run" else item.outcome
        table.add_row(str(item.ref), outcome, item.event_id or "-", item.reason or "")
    Console(width=160).print(table)
    click.echo(describe_redrive(report, dry_run=dry_run, actor=who))


def describe_redrive(report: RedriveReport, *, dry_run: bool, actor: str) -> str:
    """The one-line summary (key=value, for scripts): what was redriven and refused, or in
    a dry run what would be; a real run never shows a dry-run count, nor a dry run a
    redriven one."""
    counts = report.counts()
    context = (
        f"already-redriven={report.already_redriven} scanned={report.scanned} "
        f"group={report.group_id or '-'} actor={actor}"
    )
    if dry_run:
        return (
            f"dry run, nothing sent: would-redrive={counts['dry-run']} "
            f"would-refuse={counts['refused']} {context}"
        )
    return f"redriven={counts['redriven']} refused={counts['refused']} {context}"
