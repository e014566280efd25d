"""Is the database reachable? ``SELECT 1``, translated by ``storage.errors``."""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from storage.errors import map_db_errors

__all__ = ["ping", "ping_session"]


def ping_session(session: Session) -> None:
    """``SELECT 1`` on the session's connection (errors untranslated: the caller maps them)."""
    session.execute(text("SELECT 1")).scalar()


def ping(engine: Engine) -> None:
    """``SELECT 1`` on a fresh connection of ``engine``.

    Raises:
        DependencyUnavailableError: the database cannot be reached.
    """
    with map_db_errors("database unavailable"), engine.connect() as connection:
        connection.execute(text("SELECT 1"))
