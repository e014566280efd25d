"""Widen fbp and ad_id to the event model's 512 characters.

A value the model accepts must always fit its column: on PostgreSQL an over-long value
raised a DataError that no retry could fix.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_WIDENED = {
    "meta_capi_events": {"user_fbp": 128, "ad_id": 64},
    "contacts": {"fbp": 128, "ad_id": 64},
}


def upgrade() -> None:
    for table, columns in _WIDENED.items():
        with op.batch_alter_table(table) as batch:
            for column, old in columns.items():
                batch.alter_column(
                    column,
                    type_=sa.String(512),
                    existing_type=sa.String(old),
                    existing_nullable=True,
                )


def downgrade() -> None:
    for table, columns in _WIDENED.items():
        with op.batch_alter_table(table) as batch:
            for column, old in columns.items():
                batch.alter_column(
                    column,
                    type_=sa.String(old),
                    existing_type=sa.String(512),
                    existing_nullable=True,
                )
