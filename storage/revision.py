"""Is the database at the migrations' head? (``capi migrate --check``, init containers).

Read-only: it asks Alembic's version table and the migration scripts, and never upgrades,
so any number of pods may run it at once while one Job runs ``capi migrate``.
"""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from storage.migrate import alembic_config

__all__ = ["pending_revision"]


def pending_revision(engine: Engine) -> str | None:
    """None when the database is at head; else a sentence naming both revisions.

    Raises:
        sqlalchemy.exc.OperationalError: the database cannot be reached.
    """
    heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    if current == heads:
        return None
    have = ", ".join(sorted(current)) or "no schema"
    return f"database is at {have}, the code needs {', '.join(sorted(heads))}: run `capi migrate`"
