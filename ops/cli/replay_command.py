"""`capi replay`: re-process a time range of a topic without disturbing the live worker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import TracebackType

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from capi_stream.runtime import build_runtime
from capi_stream.settings import CapiSettings
from consumers.config import WorkerConfig
from ops.cli.options import check_range, time_range_options
from ops.replay.run import (
    Outcome,
    ReplayRequest,
    ReplayRequestError,
    ReplaySummary,
    replay_events,
)

# Shown even at zero, so a summary always answers "how many were sent / skipped / expired".
_CORE_OUTCOMES = (Outcome.SENT, Outcome.ALREADY_SENT, Outcome.EXPIRED)


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class _RateColumn(ProgressColumn):
    """Records per second, as rich measures them over its recent samples."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rec/s" if speed else "", style="dim")


class _Bar:
    """A rich progress bar: records in range when the size is known, else records read."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None
        self._counted_in_range = False

    def __enter__(self) -> _Bar:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def start(self, expected: int | None) -> None:
        self._counted_in_range = expected is not None
        what = "replaying (records in range)" if expected is not None else "replaying (read)"
        self._task = self._progress.add_task(what, total=expected)

    def advance(self, scanned: int, in_range: int) -> None:
        assert self._task is not None
        step = in_range if self._counted_in_range else scanned
        if step:
            self._progress.advance(self._task, step)


def _print_summary(console: Console, summary: ReplaySummary, dry_run: bool) -> None:
    prefix = "would be " if dry_run else ""
    totals = {prefix + name: 0 for name in _CORE_OUTCOMES} | dict(summary.by_outcome())
    failed = summary.failed_by_class
    table = Table(title="replay summary" + (" (dry run: nothing changed)" if dry_run else ""))
    table.add_column("")
    table.add_column("records", justify="right")
    rows: list[tuple[str, int | str]] = [
        ("scanned", summary.scanned),
        ("in range", summary.in_range),
        ("undecodable (left alone)", summary.undecodable),
        ("matched filters", summary.matched),
        *totals.items(),
        ("failed (any class)", sum(failed.values())),
        *((f"  failed: {name}", count) for name, count in sorted(failed.items())),
        ("dead-lettered (new DLQ records)", summary.dead_lettered),
        ("already in the DLQ (not copied again)", summary.not_copied_again),
        ("forwarded (retry tiers + DLQ)", summary.forwarded),
        ("seek", "timestamp lookup" if summary.lookup_used else "scan from the beginning"),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    console.print(table)
    if summary.outcomes:
        detail = Table(title="by tenant and event name")
        for column in ("tenant", "event name", "outcome", "events"):
            detail.add_column(column, justify="right" if column == "events" else "left")
        for (tenant, name, outcome), count in sorted(summary.outcomes.items()):
            detail.add_row(tenant, name, outcome, str(count))
        console.print(detail)


@click.command()
@time_range_options
@click.option("--topic", help="Topic to read (default: the main topic).")
@click.option("--tenant", "tenants", multiple=True, help="Only this tenant (UUID); repeatable.")
@click.option("--event-name", "event_names", multiple=True, help="e.g. Purchase; repeatable.")
@click.option(
    "--group",
    "group_id",
    help="Commit progress under this dedicated group (e.g. capi-replay-20261129) so a "
    "rerun resumes; default: assign() and commit nothing. Never the live group.",
)
@click.option(
    "--resend",
    is_flag=True,
    help="Send events already sent again (same event_id: Meta dedupes within 48 h).",
)
@click.option(
    "--no-send",
    is_flag=True,
    help="Rebuild rows (hashed) only, no Meta calls; unsent rows become 'skipped'.",
)
@click.option("--dry-run", is_flag=True, help="Report what would happen; change nothing.")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=500,
    show_default=True,
    help="Records handled (and, with --group, committed) together.",
)
@click.option("--rate", type=click.FloatRange(min=0.1), help="At most N events per second.")
def replay(
    start: datetime,
    end: datetime,
    topic: str | None,
    tenants: tuple[str, ...],
    event_names: tuple[str, ...],
    group_id: str | None,
    resend: bool,
    no_send: bool,
    dry_run: bool,
    batch_size: int,
    rate: float | None,
) -> None:
    """Re-process the events of a time range [--from, --to).

    The range is record timestamps, --to excluded (as in `capi export`); a --from in the
    future is refused. Events already sent are skipped unless --resend; events older than
    Meta's 7-day window are recorded as expired and never sent. Failures go to the retry
    tiers and the DLQ as in the worker, except that an event already in the DLQ is never
    copied there again: if it fails again, its one dead letter stays the place to act
    (capi dlq show / redrive). The live worker group's offsets are never read or changed.

    \b
    Examples:
      capi replay --from 2026-11-28T08:00 --to 2026-11-28T12:00 --dry-run
      capi replay --from 2026-11-28T08:00+01:00 --to 2026-11-28T12:00+01:00 \\
          --tenant 6f1c2c8e-8a0b-4d4e-9c61-3f1d2b7a90e2 --event-name Purchase \\
          --group capi-replay-20261128
      capi replay --from 2026-11-27T00:00Z --to 2026-11-28T00:00Z --no-send
    """
    check_range(start, end)
    if resend and no_send:
        raise click.BadParameter("--resend and --no-send exclude each other")
    settings = CapiSettings()
    if group_id is not None and group_id == settings.consumer_group:
        raise click.BadParameter(
            f"{group_id!r} is the live worker group (CONSUMER_GROUP); use e.g. "
            f"capi-replay-{datetime.now(UTC):%Y%m%d%H%M%S}",
            param_hint="--group",
        )
    try:
        tenant_ids = frozenset(uuid.UUID(value) for value in tenants)
    except ValueError:
        raise click.BadParameter("not a UUID", param_hint="--tenant") from None
    runtime = build_runtime(settings)
    request = ReplayRequest(
        topic=topic or runtime.topics.main,
        start_ms=_millis(start),
        end_ms=_millis(end),
        tenant_ids=tenant_ids,
        event_names=frozenset(event_names),
        group_id=group_id,
        resend=resend,
        no_send=no_send,
        dry_run=dry_run,
        batch_size=batch_size,
        max_rate=rate,
    )
    console = Console(width=160)
    try:
        with _Bar(console) as bar:
            summary = replay_events(
                kafka=runtime.kafka,
                topics=runtime.topics,
                sessions=runtime.sessions,
                codec=runtime.codec,
                config=WorkerConfig.from_settings(settings),
                request=request,
                progress=bar,
            )
    except ReplayRequestError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        runtime.engine.dispose()
    _print_summary(console, summary, dry_run)
