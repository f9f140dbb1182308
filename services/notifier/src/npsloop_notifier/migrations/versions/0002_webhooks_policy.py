"""webhook subscriptions, suppressions, contact state, webhook columns on deliveries

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("subscription_id", sa.UUID(), nullable=True), schema="notifier")
    op.add_column("deliveries", sa.Column("event_id", sa.UUID(), nullable=True), schema="notifier")
    op.add_column("deliveries", sa.Column("event_type", sa.String(length=64), nullable=True), schema="notifier")
    op.add_column("deliveries", sa.Column("body", sa.Text(), nullable=True), schema="notifier")
    op.create_index("ix_deliveries_tenant_created", "deliveries", ["tenant_id", "created_at"], schema="notifier")
    op.create_index(
        "ix_deliveries_subscription_status",
        "deliveries",
        ["subscription_id", "status", "created_at"],
        schema="notifier",
    )
    op.add_column("delivery_attempts", sa.Column("status_code", sa.Integer(), nullable=True), schema="notifier")
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event_types", sa.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=True),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("previous_secret", sa.Text(), nullable=True),
        sa.Column("previous_valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        schema="notifier",
    )
    op.create_index(
        "ix_notifier_webhook_subscriptions_tenant_id", "webhook_subscriptions", ["tenant_id"], schema="notifier"
    )
    op.create_table(
        "suppressions",
        sa.Column("value_hash", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("hint", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("value_hash"),
        schema="notifier",
    )
    op.create_index("ix_notifier_suppressions_tenant_id", "suppressions", ["tenant_id"], schema="notifier")
    op.create_table(
        "contact_state",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("customer_key", sa.String(length=256), nullable=False),
        sa.Column("last_contact_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("previous_contact_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_delivery_id", sa.UUID(), nullable=True),
        sa.Column("last_kind", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "customer_key"),
        schema="notifier",
    )


def downgrade() -> None:
    op.drop_table("contact_state", schema="notifier")
    op.drop_index("ix_notifier_suppressions_tenant_id", table_name="suppressions", schema="notifier")
    op.drop_table("suppressions", schema="notifier")
    op.drop_index("ix_notifier_webhook_subscriptions_tenant_id", table_name="webhook_subscriptions", schema="notifier")
    op.drop_table("webhook_subscriptions", schema="notifier")
    op.drop_column("delivery_attempts", "status_code", schema="notifier")
    op.drop_index("ix_deliveries_subscription_status", table_name="deliveries", schema="notifier")
    op.drop_index("ix_deliveries_tenant_created", table_name="deliveries", schema="notifier")
    for column in ("body", "event_type", "event_id", "subscription_id"):
        op.drop_column("deliveries", column, schema="notifier")
