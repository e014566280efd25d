"""Seal tenant credentials at rest: ``credentials`` (JSON) becomes ``sealed_credentials``.

Meta access tokens and webhook secrets were stored in clear. Each row's JSON is sealed with
the first key of ``CAPI_SECRETS_KEY`` (handed in by ``storage.migrate``); a database with
rows and no key fails with a clear message before anything changes.

Revision ID: 0004_encrypt_secrets
Revises: 0002
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context, op

from capi_stream.errors import SecretsKeyError
from capi_stream.secrets import SecretBox

revision = "0004_encrypt_secrets"
down_revision = "0002"
branch_labels = None
depends_on = None

_TABLE = "tenant_integrations"


def _rows(column: str, type_: sa.types.TypeEngine[Any]) -> tuple[sa.TableClause, list[Any]]:
    table = sa.table(_TABLE, sa.column("id", sa.Uuid()), sa.column(column, type_))
    rows = op.get_bind().execute(sa.select(table.c.id, table.c[column])).all()
    return table, list(rows)


def _box(rows: int, direction: str) -> SecretBox | None:
    box: SecretBox | None = context.config.attributes.get("secrets")
    if box is None and rows:
        raise SecretsKeyError(
            f"migration 0004 must {direction} {rows} tenant integration(s) and needs the key: "
            "set CAPI_SECRETS_KEY (a Fernet key; `capi tenants generate-key` makes one) "
            "and run `capi migrate` again; nothing was changed"
        )
    return box


def upgrade() -> None:
    _table, rows = _rows("credentials", sa.JSON())
    box = _box(len(rows), "encrypt")
    with op.batch_alter_table(_TABLE) as batch:
        batch.add_column(sa.Column("sealed_credentials", sa.Text(), nullable=True))
    sealed = sa.table(_TABLE, sa.column("id", sa.Uuid()), sa.column("sealed_credentials"))
    for row_id, credentials in rows:
        assert box is not None  # _box raised when rows exist without one
        op.get_bind().execute(
            sa.update(sealed)
            .where(sealed.c.id == row_id)
            .values(sealed_credentials=box.seal(credentials or {}))
        )
    with op.batch_alter_table(_TABLE) as batch:
        batch.alter_column("sealed_credentials", existing_type=sa.Text(), nullable=False)
        batch.drop_column("credentials")


def downgrade() -> None:
    _table, rows = _rows("sealed_credentials", sa.Text())
    box = _box(len(rows), "decrypt")
    with op.batch_alter_table(_TABLE) as batch:
        batch.add_column(sa.Column("credentials", sa.JSON(), nullable=True))
    clear = sa.table(_TABLE, sa.column("id", sa.Uuid()), sa.column("credentials", sa.JSON()))
    for row_id, sealed in rows:
        assert box is not None
        op.get_bind().execute(
            sa.update(clear).where(clear.c.id == row_id).values(credentials=box.open(sealed))
        )
    with op.batch_alter_table(_TABLE) as batch:
        batch.alter_column("credentials", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("sealed_credentials")
