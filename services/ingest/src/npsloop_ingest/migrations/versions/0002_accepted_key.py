"""the message key and store of each accepted answer, so that a late PATCH publishes on the same key

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 19:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accepted", sa.Column("customer_key", sa.Text(), nullable=True), schema="ingest")
    op.add_column("accepted", sa.Column("store_id", sa.Text(), nullable=True), schema="ingest")


def downgrade() -> None:
    op.drop_column("accepted", "store_id", schema="ingest")
    op.drop_column("accepted", "customer_key", schema="ingest")
