"""`capi meta-emulator`: serve the strict Graph API emulator that stands in for Meta."""

from __future__ import annotations

import click

from meta_capi.emulator import run_emulator


@click.command("meta-emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--keep-events/--no-keep-events",
    default=True,
    show_default=True,
    envvar="CAPI_EMULATOR_KEEP_EVENTS",
    help="Remember every accepted event; --no-keep-events keeps only counts (benchmarks).",
)
def meta_emulator(host: str, port: int, keep_events: bool) -> None:
    """Answer POST /{version}/{pixel_id}/events as Meta does; control it under /_emulator."""
    click.echo(f"Meta Graph API emulator on http://{host}:{port} (META_GRAPH_URL for workers)")
    run_emulator(host, port, keep_events=keep_events)
