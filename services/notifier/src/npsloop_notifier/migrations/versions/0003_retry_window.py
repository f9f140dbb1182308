"""deliveries.next_attempt_at: a delivery whose receiver was down is retried over a time window

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "deliveries", sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True), schema="notifier"
    )
    op.create_index(
        "ix_deliveries_retry_due",
        "deliveries",
        ["next_attempt_at"],
        schema="notifier",
        postgresql_where=sa.text("status = 'retrying'"),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_retry_due", table_name="deliveries", schema="notifier")
    op.drop_column("deliveries", "next_attempt_at", schema="notifier")
