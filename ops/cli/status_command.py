"""`capi status`: delivery counts, match quality, consumer lag, retry depth, dead letters.

``collect_status`` gathers everything as JSON-ready data (``--json`` prints it whole); the
table view is a list of sections, each a function of (console, report, view), so a new
figure is one more function appended to ``SECTIONS``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from capi_stream.runtime import build_runtime, open_database, resolve_settings
from capi_stream.settings import CapiSettings
from ops.cli.pixel_command import print_pixel_readiness
from ops.dlq.reader import summarize_dead_letters
from ops.pixel_status import query_pixel_readiness
from ops.status import (
    MATCH_KEY_LABELS,
    MATCH_KEYS,
    PartitionLag,
    measure_lag,
    query_event_counts,
    query_last_errors,
    query_match_quality,
)

# A Meta error can be long; a table cell shows its head (``--json`` keeps it whole).
_ERROR_CELL_CHARS = 160


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _age_of(stamp_ms: int | None, now_ms: int) -> float | None:
    return None if stamp_ms is None else max(0, now_ms - stamp_ms) / 1000


def _topic_totals(lags: list[PartitionLag], now_ms: int) -> dict[str, dict[str, Any]]:
    """Per topic: total lag, partitions lagging, and the oldest record still waiting."""
    totals: dict[str, dict[str, Any]] = {}
    for lag in lags:
        entry = totals.setdefault(
            lag.topic, {"lag": 0, "partitions": 0, "lagging": 0, "oldest_waiting_ms": None}
        )
        entry["lag"] += lag.lag
        entry["partitions"] += 1
        entry["lagging"] += int(lag.lag > 0)
        stamps = [s for s in (lag.oldest_waiting_ms, entry["oldest_waiting_ms"]) if s is not None]
        entry["oldest_waiting_ms"] = min(stamps, default=None)
    for entry in totals.values():
        entry["oldest_waiting_age_seconds"] = _age_of(entry["oldest_waiting_ms"], now_ms)
    return totals


def collect_status(
    settings: CapiSettings, tenant: uuid.UUID | None, with_kafka: bool
) -> dict[str, Any]:
    """Everything ``capi status`` shows, as JSON-ready data."""
    runtime = build_runtime(settings) if with_kafka else None
    from capi_stream.database import build_session_factory

    engine = runtime.engine if runtime else open_database(resolve_settings(settings))
    try:
        with build_session_factory(engine)() as session:
            events = [c.to_dict() for c in query_event_counts(session, tenant)]
            quality = [q.to_dict() for q in query_match_quality(session, tenant)]
            pixel = [p.to_dict() for p in query_pixel_readiness(session, tenant)]
            errors = [e.to_dict() for e in query_last_errors(session, tenant)]
    finally:
        engine.dispose()
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for error in errors:  # per (tenant, event name): the newest of its retrying / dead errors
        key = (error["tenant_id"], error["event_name"])
        if key not in newest or (error["at"] or "") > (newest[key]["at"] or ""):
            newest[key] = error
    for row in events:
        last = newest.get((row["tenant_id"], row["event_name"]))
        row["last_error"] = last["error"] if last else None
    report: dict[str, Any] = {
        "events": events,
        "match_quality": quality,
        "last_errors": errors,
        "pixel": pixel,
    }
    if runtime is None:
        return report
    topics = runtime.topics
    lags = measure_lag(runtime.kafka, settings.consumer_group, (topics.main, *topics.retries))
    now = int(time.time() * 1000)
    totals = _topic_totals(lags, now)
    report["consumer_group"] = settings.consumer_group
    report["lag"] = [
        {
            "topic": x.topic,
            "partition": x.partition,
            "committed": x.committed,
            "end": x.end,
            "lag": x.lag,
            "oldest_waiting_ms": x.oldest_waiting_ms,
        }
        for x in lags
    ]
    report["lag_by_topic"] = {topic: entry["lag"] for topic, entry in totals.items()}
    report["topics"] = totals
    report["retry_depth"] = {topic: totals[topic]["lag"] for topic in topics.retries}
    report["retry_tiers"] = [
        {
            "topic": topic,
            "depth": totals[topic]["lag"],
            "oldest_age_seconds": totals[topic]["oldest_waiting_age_seconds"],
        }
        for topic in topics.retries
    ]
    report["dead_letters"] = {
        "topic": topics.dlq,
        **summarize_dead_letters(runtime.kafka, topics.dlq).to_dict(now),
    }
    report["lag_method"] = (
        "committed: AdminClient.list_consumer_group_offsets; log end: Fetch high watermark "
        "(assign + get_watermark_offsets(cached=True)), never ListOffsets; oldest waiting: "
        "the timestamp of the first record after the committed offset"
    )
    return report


@dataclass(frozen=True, slots=True)
class View:
    """How the tables are drawn (options of the command)."""

    partitions: bool = False


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def _when(iso: str | None) -> str:
    """A stored ISO 8601 time, to the second, in UTC (naive values are UTC already)."""
    if iso is None:
        return "-"
    moment = datetime.fromisoformat(iso)
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _print_events(console: Console, report: dict[str, Any], _view: View) -> None:
    events = Table(title="events per tenant and event name")
    columns = (
        "tenant_id",
        "event_name",
        "received",
        "pending",
        "sent",
        "retrying",
        "dead_lettered",
        "expired",
        "oldest_unsent",
    )
    for column in columns:
        events.add_column(column.replace("_", " "))
    for row in report["events"]:
        cells = [_cell(row[c]) for c in columns[:-1]]
        events.add_row(*cells, _when(row["oldest_unsent"]))
    console.print(events)


def _print_last_errors(console: Console, report: dict[str, Any], _view: View) -> None:
    if not report["last_errors"]:
        return
    table = Table(title="why events are retrying or dead-lettered (newest error of each)")
    for column in ("tenant id", "event name", "status", "at", "last error"):
        table.add_column(column, overflow="fold")
    for row in report["last_errors"]:
        error = row["error"]
        if len(error) > _ERROR_CELL_CHARS:
            error = error[: _ERROR_CELL_CHARS - 3] + "..."
        table.add_row(row["tenant_id"], row["event_name"], row["status"], _when(row["at"]), error)
    console.print(table)


def _print_quality(console: Console, report: dict[str, Any], _view: View) -> None:
    quality = Table(title="match quality (share of events carrying the key)")
    quality.add_column("tenant id")
    quality.add_column("events")
    for key in MATCH_KEYS:
        quality.add_column(MATCH_KEY_LABELS[key])
    for row in report["match_quality"]:
        shares = [f"{row['share'][k]:.0%}" for k in MATCH_KEYS]
        quality.add_row(row["tenant_id"], str(row["total"]), *shares)
    console.print(quality)
    print_pixel_readiness(console, report["pixel"])


def _print_lag(console: Console, report: dict[str, Any], view: View) -> None:
    if "lag" not in report:
        return
    group = report["consumer_group"]
    if view.partitions:
        lag = Table(title=f"lag of group {group}, per partition")
        for column in ("topic", "partition", "committed", "end", "lag", "oldest waiting"):
            lag.add_column(column)
        now = int(time.time() * 1000)
        for row in report["lag"]:
            lag.add_row(
                row["topic"],
                str(row["partition"]),
                _cell(row["committed"]),
                str(row["end"]),
                str(row["lag"]),
                _age(_age_of(row["oldest_waiting_ms"], now)),
            )
        console.print(lag)
        return
    lag = Table(title=f"lag of group {group} (per topic; --partitions for each partition)")
    for column in ("topic", "lag", "partitions lagging", "oldest waiting"):
        lag.add_column(column)
    for topic, entry in report["topics"].items():
        lag.add_row(
            topic,
            str(entry["lag"]),
            f"{entry['lagging']} of {entry['partitions']}",
            _age(entry["oldest_waiting_age_seconds"]),
        )
    console.print(lag)


def _print_tiers(console: Console, report: dict[str, Any], _view: View) -> None:
    if "dead_letters" not in report:
        return
    dead = report["dead_letters"]
    summary = Table(title="retry tiers and dead letters")
    summary.add_column("topic")
    summary.add_column("waiting")
    summary.add_column("oldest")
    summary.add_column("newest reason", overflow="fold")
    for tier in report["retry_tiers"]:
        summary.add_row(tier["topic"], str(tier["depth"]), _age(tier["oldest_age_seconds"]), "")
    summary.add_row(
        dead["topic"],
        str(dead["count"]),
        _age(dead["oldest_age_seconds"]),
        dead["newest_reason"] or "",
    )
    console.print(summary)


# The table view, in order; a new figure is one more function here.
SECTIONS: list[Callable[[Console, dict[str, Any], View], None]] = [
    _print_events,
    _print_last_errors,
    _print_quality,
    _print_lag,
    _print_tiers,
]


@click.command()
@click.option("--tenant", "tenant_id", help="Only this tenant (UUID).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (everything).")
@click.option("--no-kafka", is_flag=True, help="Database figures only (no broker needed).")
@click.option(
    "--partitions", is_flag=True, help="Lag of every partition instead of a total per topic."
)
def status(tenant_id: str | None, as_json: bool, no_kafka: bool, partitions: bool) -> None:
    """Show what the pipeline received, sent and still owes, and why.

    Counts per tenant and event name, the newest error of each group with retrying or
    dead-lettered events, match quality, the worker group's lag per topic, and what waits
    in each retry tier and in the DLQ (how many, how old, the newest reason).
    """
    settings = CapiSettings()
    try:
        tenant = uuid.UUID(tenant_id) if tenant_id else None
    except ValueError:
        raise click.BadParameter("not a UUID", param_hint="--tenant") from None
    report = collect_status(settings, tenant, with_kafka=not no_kafka)
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    console = Console(width=160)
    view = View(partitions=partitions)
    for section in SECTIONS:
        section(console, report, view)
