"""`capi status`: delivery counts, match quality, consumer lag, retry depth, dead letters."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from capi_stream.runtime import build_runtime, open_database, resolve_settings
from capi_stream.settings import CapiSettings
from consumers.dlq import summarize_dead_letters
from consumers.status import (
    MATCH_KEYS,
    measure_lag,
    query_event_counts,
    query_match_quality,
)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def collect_status(
    settings: CapiSettings, tenant: uuid.UUID | None, with_kafka: bool
) -> dict[str, Any]:
    """Everything ``capi status`` shows, as JSON-ready data."""
    runtime = build_runtime(settings) if with_kafka else None
    from storage.engine import build_session_factory

    engine = runtime.engine if runtime else open_database(resolve_settings(settings))
    try:
        with build_session_factory(engine)() as session:
            events = [c.to_dict() for c in query_event_counts(session, tenant)]
            quality = [q.to_dict() for q in query_match_quality(session, tenant)]
    finally:
        engine.dispose()
    report: dict[str, Any] = {"events": events, "match_quality": quality}
    if runtime is None:
        return report
    topics = runtime.topics
    lags = measure_lag(runtime.kafka, settings.consumer_group, (topics.main, *topics.retries))
    by_topic: dict[str, int] = {}
    for lag in lags:
        by_topic[lag.topic] = by_topic.get(lag.topic, 0) + lag.lag
    now = int(time.time() * 1000)
    report["consumer_group"] = settings.consumer_group
    report["lag"] = [
        {
            "topic": x.topic,
            "partition": x.partition,
            "committed": x.committed,
            "end": x.end,
            "lag": x.lag,
        }  # fmt: skip
        for x in lags
    ]
    report["lag_by_topic"] = by_topic
    report["retry_depth"] = {topic: by_topic.get(topic, 0) for topic in topics.retries}
    report["dead_letters"] = {
        "topic": topics.dlq,
        **summarize_dead_letters(runtime.kafka, topics.dlq).to_dict(now),
    }
    report["lag_method"] = (
        "committed: AdminClient.list_consumer_group_offsets; log end: Fetch high watermark "
        "(assign + get_watermark_offsets(cached=True)), never ListOffsets"
    )
    return report


def _print(report: dict[str, Any]) -> None:
    console = Console(width=160)
    events = Table(title="events per tenant and event name")
    columns = ("tenant_id", "event_name", "received", "pending", "sent", "retrying",
               "dead_lettered", "expired", "oldest_unsent")  # fmt: skip
    for column in columns:
        events.add_column(column.replace("_", " "))
    for row in report["events"]:
        events.add_row(*(str(row[c]) if row[c] is not None else "-" for c in columns))
    console.print(events)

    quality = Table(title="match quality (share of events carrying the key)")
    quality.add_column("tenant id")
    quality.add_column("events")
    for key in MATCH_KEYS:
        quality.add_column(key.replace("_", "+"))
    for row in report["match_quality"]:
        shares = [f"{row['share'][k]:.0%}" for k in MATCH_KEYS]
        quality.add_row(row["tenant_id"], str(row["total"]), *shares)
    console.print(quality)

    if "lag" not in report:
        return
    lag = Table(title=f"lag of group {report['consumer_group']}")
    for column in ("topic", "partition", "committed", "end", "lag"):
        lag.add_column(column)
    for row in report["lag"]:
        committed = "-" if row["committed"] is None else str(row["committed"])
        lag.add_row(row["topic"], str(row["partition"]), committed, str(row["end"]),
                    str(row["lag"]))  # fmt: skip
    console.print(lag)
    dead = report["dead_letters"]
    summary = Table(title="retry tiers and dead letters")
    summary.add_column("topic")
    summary.add_column("depth")
    summary.add_column("oldest")
    for topic, depth in report["retry_depth"].items():
        summary.add_row(topic, str(depth), "")
    summary.add_row(dead["topic"], str(dead["count"]), _age(dead["oldest_age_seconds"]))
    console.print(summary)


@click.command()
@click.option("--tenant", "tenant_id", help="Only this tenant (UUID).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-kafka", is_flag=True, help="Database figures only (no broker needed).")
def status(tenant_id: str | None, as_json: bool, no_kafka: bool) -> None:
    """Show what the pipeline received, sent and still owes, and how far behind it is."""
    settings = CapiSettings()
    try:
        tenant = uuid.UUID(tenant_id) if tenant_id else None
    except ValueError:
        raise click.BadParameter("not a UUID", param_hint="--tenant") from None
    report = collect_status(settings, tenant, with_kafka=not no_kafka)
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        _print(report)
