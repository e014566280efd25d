"""Database connections: engines and sessions for SQLite (embedded default) and PostgreSQL.

Connection plumbing sits in the core beside the Kafka edge; the tables and the queries
that use them are `storage`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.secrets import SECRETS_INFO_KEY, SecretBox


def build_engine(url: str, **kwargs: Any) -> Engine:
    """An engine tuned per backend: SQLite in WAL mode with a busy timeout; pooled PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def build_session_factory(
    engine: Engine, secrets: SecretBox | None = None
) -> sessionmaker[Session]:
    """Sessions that carry ``secrets``, the box ``storage.tenants`` seals credentials with."""
    return sessionmaker(engine, expire_on_commit=False, info={SECRETS_INFO_KEY: secrets})
