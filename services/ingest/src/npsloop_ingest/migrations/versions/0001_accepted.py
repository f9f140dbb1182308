"""accepted events, for idempotency

Revision ID: 0001
Revises:
Create Date: 2026-11-25 04:40:00
"""

from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accepted",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "event_id"),
        schema="ingest",
    )
    op.create_index("ix_accepted_accepted_at", "accepted", ["accepted_at"], schema="ingest")


def downgrade() -> None:
    op.drop_table("accepted", schema="ingest")
