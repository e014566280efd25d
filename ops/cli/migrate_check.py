"""`capi migrate --check`: exit 0 when the database is at head, 1 naming both revisions."""

from __future__ import annotations

import sys
from typing import NoReturn

import click
from sqlalchemy import Engine

from storage.revision import pending_revision

EXIT_PENDING = 1


def check_at_head(engine: Engine) -> NoReturn:
    """Print the verdict and exit; never changes the database."""
    try:
        pending = pending_revision(engine)
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    if pending is not None:
        click.echo(f"{where}: {pending}", err=True)
        sys.exit(EXIT_PENDING)
    click.echo(f"database at {where} is at head")
    sys.exit(0)
