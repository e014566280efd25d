"""`capi migrate`: create or upgrade the database schema."""

from __future__ import annotations

import click

from capi_stream.database import build_engine
from capi_stream.runtime import build_secrets, resolve_settings
from capi_stream.settings import CapiSettings
from ops.cli.migrate_check import check_at_head
from storage.migrate import migrate as apply_migrations


@click.command()
@click.option(
    "--revision",
    default="head",
    show_default=True,
    help="Alembic revision to upgrade to, e.g. 0002; head = the newest.",
)
@click.option("--check", is_flag=True, help="Change nothing; exit 1 unless at head.")
def migrate(revision: str, check: bool) -> None:
    """Apply the database migrations (idempotent)."""
    settings = resolve_settings(CapiSettings())  # a running stack's database, if any
    engine = build_engine(settings.database_url)
    if check:  # init containers: the rollout waits for the setup Job's migration
        check_at_head(engine)
    try:
        # Revision 0004 seals stored credentials: it needs the key when there are some.
        apply_migrations(engine, revision, secrets=build_secrets(settings))
    finally:
        engine.dispose()
    click.echo(f"database at {engine.url.render_as_string(hide_password=True)} is at {revision}")
