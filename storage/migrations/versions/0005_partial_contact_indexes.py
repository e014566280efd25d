"""Index only the contacts' non-null linking values: partial unique and lookup indexes.

The five source-id unique constraints indexed every contact, null ids included (most
contacts have one or two of the five), and every one of them begins with ``tenant_id``: a
planner without fresh statistics read a tenant's whole index through the Stripe one to
find an email. Partial indexes (``WHERE <column> IS NOT NULL``) keep the same uniqueness
(nulls were always distinct), hold only real values, and a lookup of one column can use
only that column's index. A new contact now writes the index entries of the values it has,
not eight.

On PostgreSQL each ``CREATE INDEX`` holds a write lock on ``contacts`` while it builds.

Revision ID: 0005_partial_contact_indexes
Revises: 0004_encrypt_secrets
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_partial_contact_indexes"
down_revision = "0004_encrypt_secrets"
branch_labels = None
depends_on = None

_SOURCE_IDS = (
    "mc_subscriber_id",
    "ghl_contact_id",
    "stripe_customer_id",
    "perspective_contact_id",
    "denefits_contract_code",
)
_HASHES = {"ix_contacts_tenant_email": "email_hash", "ix_contacts_tenant_phone": "phone_hash"}


def _create(name: str, column: str, *, unique: bool) -> None:
    where = sa.text(f"{column} IS NOT NULL")
    op.create_index(
        name,
        "contacts",
        ["tenant_id", column],
        unique=unique,
        postgresql_where=where,
        sqlite_where=where,
    )


def upgrade() -> None:
    # batch: SQLite rebuilds the table to drop a constraint; PostgreSQL alters it in place
    with op.batch_alter_table("contacts") as batch:
        for column in _SOURCE_IDS:
            batch.drop_constraint(f"uq_contacts_tenant_id_{column}", type_="unique")
        for name in _HASHES:
            batch.drop_index(name)
    for column in _SOURCE_IDS:
        _create(f"uq_contacts_tenant_id_{column}", column, unique=True)
    for name, column in _HASHES.items():
        _create(name, column, unique=False)


def downgrade() -> None:
    for column in _SOURCE_IDS:
        op.drop_index(f"uq_contacts_tenant_id_{column}", table_name="contacts")
    for name in _HASHES:
        op.drop_index(name, table_name="contacts")
    with op.batch_alter_table("contacts") as batch:
        for column in _SOURCE_IDS:
            batch.create_unique_constraint(f"uq_contacts_tenant_id_{column}", ["tenant_id", column])
    for name, column in _HASHES.items():
        op.create_index(name, "contacts", ["tenant_id", column])
