"""Apply the Alembic migrations (``capi migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from capi_stream.secrets import SecretBox

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine, secrets: SecretBox | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    # 0004 seals the stored credentials and needs the key when rows exist.
    config.attributes["secrets"] = secrets
    return config


def migrate(engine: Engine, revision: str = "head", *, secrets: SecretBox | None = None) -> None:
    """Bring the database to ``revision`` (latest by default); safe to run repeatedly.

    Raises:
        SecretsKeyError: stored credentials must be sealed and ``secrets`` is None.
    """
    command.upgrade(alembic_config(engine, secrets), revision)


def downgrade(engine: Engine, revision: str = "base", *, secrets: SecretBox | None = None) -> None:
    command.downgrade(alembic_config(engine, secrets), revision)
