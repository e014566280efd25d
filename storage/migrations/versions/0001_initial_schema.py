"""initial schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "contacts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("mc_subscriber_id", sa.String(length=128), nullable=True),
        sa.Column("ghl_contact_id", sa.String(length=128), nullable=True),
        sa.Column("stripe_customer_id", sa.String(length=128), nullable=True),
        sa.Column("perspective_contact_id", sa.String(length=128), nullable=True),
        sa.Column("denefits_contract_code", sa.String(length=128), nullable=True),
        sa.Column("email_hash", sa.String(length=64), nullable=True),
        sa.Column("phone_hash", sa.String(length=64), nullable=True),
        sa.Column("fbclid", sa.String(length=512), nullable=True),
        sa.Column("fbc", sa.String(length=600), nullable=True),
        sa.Column("fbc_first_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fbp", sa.String(length=128), nullable=True),
        sa.Column("ad_id", sa.String(length=64), nullable=True),
        sa.Column("ctwa_clid", sa.String(length=512), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint(
            "tenant_id",
            "denefits_contract_code",
            name=op.f("uq_contacts_tenant_id_denefits_contract_code"),
        ),
        sa.UniqueConstraint(
            "tenant_id", "ghl_contact_id", name=op.f("uq_contacts_tenant_id_ghl_contact_id")
        ),
        sa.UniqueConstraint(
            "tenant_id", "mc_subscriber_id", name=op.f("uq_contacts_tenant_id_mc_subscriber_id")
        ),
        sa.UniqueConstraint(
            "tenant_id",
            "perspective_contact_id",
            name=op.f("uq_contacts_tenant_id_perspective_contact_id"),
        ),
        sa.UniqueConstraint(
            "tenant_id", "stripe_customer_id", name=op.f("uq_contacts_tenant_id_stripe_customer_id")
        ),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.create_index("ix_contacts_tenant_email", ["tenant_id", "email_hash"], unique=False)
        batch_op.create_index("ix_contacts_tenant_phone", ["tenant_id", "phone_hash"], unique=False)

    op.create_table(
        "meta_capi_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=True),
        sa.Column("event_name", sa.String(length=100), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("action_source", sa.String(length=32), nullable=False),
        sa.Column("event_source_url", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("source_event_id", sa.String(length=512), nullable=False),
        sa.Column("user_email_hash", sa.String(length=64), nullable=True),
        sa.Column("user_phone_hash", sa.String(length=64), nullable=True),
        sa.Column("user_first_name_hash", sa.String(length=64), nullable=True),
        sa.Column("user_last_name_hash", sa.String(length=64), nullable=True),
        sa.Column("user_gender_hash", sa.String(length=64), nullable=True),
        sa.Column("user_date_of_birth_hash", sa.String(length=64), nullable=True),
        sa.Column("user_city_hash", sa.String(length=64), nullable=True),
        sa.Column("user_state_hash", sa.String(length=64), nullable=True),
        sa.Column("user_zip_hash", sa.String(length=64), nullable=True),
        sa.Column("user_country_hash", sa.String(length=64), nullable=True),
        sa.Column("user_external_id", sa.String(length=64), nullable=True),
        sa.Column("user_fbp", sa.String(length=128), nullable=True),
        sa.Column("user_fbc", sa.String(length=600), nullable=True),
        sa.Column("user_data", sa.JSON(), nullable=False),
        sa.Column("ad_id", sa.String(length=64), nullable=True),
        sa.Column("event_value", sa.Numeric(precision=20, scale=4), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("custom_data", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sent_to_meta", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("send_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("meta_fbtrace_id", sa.String(length=128), nullable=True),
        sa.Column("meta_response", sa.JSON(), nullable=True),
        sa.Column("send_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_send_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meta_capi_events")),
        sa.UniqueConstraint(
            "tenant_id", "event_id", name=op.f("uq_meta_capi_events_tenant_id_event_id")
        ),
    )
    with op.batch_alter_table("meta_capi_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_meta_capi_events_status", ["tenant_id", "status", "event_name"], unique=False
        )
        batch_op.create_index(
            "ix_meta_capi_events_unsent",
            ["tenant_id", "created_at"],
            unique=False,
            postgresql_where=sa.text("sent_to_meta = false AND send_attempts < 5"),
            sqlite_where=sa.text("sent_to_meta = 0 AND send_attempts < 5"),
        )

    op.create_table(
        "redrive_audit",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("event_id", sa.String(length=255), nullable=True),
        sa.Column("dlq_topic", sa.String(length=255), nullable=False),
        sa.Column("dlq_partition", sa.Integer(), nullable=False),
        sa.Column("dlq_offset", sa.Integer(), nullable=False),
        sa.Column("target_topic", sa.String(length=255), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redrive_audit")),
    )
    with op.batch_alter_table("redrive_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_redrive_audit_event_id"), ["event_id"], unique=False)

    op.create_table(
        "tenant_integrations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("credentials", sa.JSON(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_integrations")),
        sa.UniqueConstraint(
            "tenant_id", "provider", name=op.f("uq_tenant_integrations_tenant_id_provider")
        ),
    )
    with op.batch_alter_table("tenant_integrations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tenant_integrations_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "tenants",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("default_country", sa.String(length=2), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenants")),
    )
    op.create_table(
        "webhook_receipts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("delivery_id", sa.String(length=255), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_receipts")),
        sa.UniqueConstraint(
            "tenant_id",
            "source",
            "delivery_id",
            name=op.f("uq_webhook_receipts_tenant_id_source_delivery_id"),
        ),
    )


def downgrade() -> None:

    op.drop_table("webhook_receipts")
    op.drop_table("tenants")
    with op.batch_alter_table("tenant_integrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tenant_integrations_tenant_id"))

    op.drop_table("tenant_integrations")
    with op.batch_alter_table("redrive_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_redrive_audit_event_id"))

    op.drop_table("redrive_audit")
    with op.batch_alter_table("meta_capi_events", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_meta_capi_events_unsent",
            postgresql_where=sa.text("sent_to_meta = false AND send_attempts < 5"),
            sqlite_where=sa.text("sent_to_meta = 0 AND send_attempts < 5"),
        )
        batch_op.drop_index("ix_meta_capi_events_status")

    op.drop_table("meta_capi_events")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_contacts_tenant_phone")
        batch_op.drop_index("ix_contacts_tenant_email")

    op.drop_table("contacts")
