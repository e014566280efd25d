"""`capi migrate`: create or upgrade the database schema."""

from __future__ import annotations

import click

from capi_stream.runtime import build_secrets
from capi_stream.settings import CapiSettings
from storage.engine import build_engine
from storage.migrate import migrate as apply_migrations


@click.command()
@click.option("--revision", default="head", show_default=True)
def migrate(revision: str) -> None:
    """Apply the database migrations (idempotent)."""
    settings = CapiSettings()
    engine = build_engine(settings.database_url)
    try:
        # Revision 0004 seals stored credentials: it needs the key when there are some.
        apply_migrations(engine, revision, secrets=build_secrets(settings))
    finally:
        engine.dispose()
    click.echo(f"database at {engine.url.render_as_string(hide_password=True)} is at {revision}")
