"""`capi export`: a time range of a topic to an Avro file, customer data hashed."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import click

from capi_stream.runtime import build_runtime
from capi_stream.settings import CapiSettings
from ops.cli.options import check_range, time_range_options
from ops.export import ExportRequest, export_events
from storage.tenants import read_default_countries


@click.command()
@time_range_options
@click.option("--tenant", "tenant_id", help="Only this tenant (UUID).")
@click.option("--event-name", help="Only this event name, e.g. Purchase.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Avro file to write (replaced only once complete; parent folders are created).",
)
@click.option("--topic", help="Topic to read (default: the main topic).")
def export(
    start: datetime,
    end: datetime,
    tenant_id: str | None,
    event_name: str | None,
    out: Path,
    topic: str | None,
) -> None:
    """Write the events of a time range [--from, --to) to an Avro file.

    The range is record timestamps, --to excluded (as in `capi replay`); a --from in the
    future is refused. Customer data is hashed as Meta receives it; the file uses the
    ConversionEvent schema.
    """
    check_range(start, end)
    try:
        tenant = uuid.UUID(tenant_id) if tenant_id else None
    except ValueError:
        raise click.BadParameter("not a UUID", param_hint="--tenant") from None
    runtime = build_runtime(CapiSettings())
    try:
        with runtime.sessions() as session:
            countries = read_default_countries(session)
        request = ExportRequest(
            topic=topic or runtime.topics.main,
            start_ms=int(start.timestamp() * 1000),
            end_ms=int(end.timestamp() * 1000),
            out=out,
            tenant_id=tenant,
            event_name=event_name,
        )
        summary = export_events(runtime.kafka, runtime.codec, request, countries)
    finally:
        runtime.engine.dispose()
    lookup = "timestamp lookup" if summary.lookup_used else "scan from the beginning"
    click.echo(
        f"exported {summary.written} event(s) from {request.topic} "
        f"[{start.isoformat()} .. {end.isoformat()}) to {out}; scanned {summary.scanned} "
        f"record(s) ({lookup}), {summary.undecodable} undecodable"
    )
