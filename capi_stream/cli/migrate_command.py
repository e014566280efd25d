"""`capi migrate`: create or upgrade the database schema."""

from __future__ import annotations

import click

from capi_stream.runtime import resolve_settings
from capi_stream.settings import CapiSettings
from storage.engine import build_engine
from storage.migrate import migrate as apply_migrations


@click.command()
@click.option("--revision", default="head", show_default=True)
def migrate(revision: str) -> None:
    """Apply the database migrations (idempotent)."""
    settings = resolve_settings(CapiSettings())  # a running stack's database, if any
    engine = build_engine(settings.database_url)
    try:
        apply_migrations(engine, revision)
    finally:
        engine.dispose()
    click.echo(f"database at {engine.url.render_as_string(hide_password=True)} is at {revision}")
