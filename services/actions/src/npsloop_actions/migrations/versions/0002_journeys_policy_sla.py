"""journeys, one open case per customer, case lifecycle and SLA columns

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "actions"
TS = sa.DateTime(timezone=True)
EMPTY = sa.text("'[]'::jsonb")


def upgrade() -> None:
    for col in [
        sa.Column("case_id", sa.UUID(), nullable=True),
        sa.Column("theme_sentiments", postgresql.JSONB(), server_default=EMPTY, nullable=False),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("locale", sa.String(35), nullable=True),
        sa.Column("contact", postgresql.JSONB(), nullable=True),
        sa.Column("consent_to_contact", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("requested", postgresql.JSONB(), server_default=EMPTY, nullable=False),
        sa.Column("rules", postgresql.JSONB(), server_default=EMPTY, nullable=False),
        sa.Column("updated_at", TS, nullable=True),
    ]:
        op.add_column("feedback", col, schema=S)
    op.create_index("ix_feedback_customer", "feedback", ["customer_key", "occurred_at"], schema=S)
    op.execute(
        "UPDATE actions.feedback f SET case_id = c.case_id FROM actions.cases c WHERE c.feedback_event_id = f.feedback_event_id"
    )

    for col in [
        sa.Column("kind", sa.String(16), server_default=sa.text("'callback'"), nullable=False),
        sa.Column("priority", sa.SmallInteger(), server_default=sa.text("50"), nullable=False),
        sa.Column("themes", postgresql.JSONB(), server_default=EMPTY, nullable=False),
        sa.Column("flags", postgresql.JSONB(), server_default=EMPTY, nullable=False),
        sa.Column("assignee", sa.String(128), nullable=True),
        sa.Column("sla_started_at", TS, nullable=True),
        sa.Column("sla_hours", sa.Float(), nullable=True),
        sa.Column("sla_fingerprint", sa.String(32), nullable=True),
        sa.Column("sla_warn_at", TS, nullable=True),
        sa.Column("sla_due_at", TS, nullable=True),
        sa.Column("warned_at", TS, nullable=True),
        sa.Column("breached_at", TS, nullable=True),
        sa.Column("escalation_level", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_escalation_at", TS, nullable=True),
        sa.Column("first_contacted_at", TS, nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("root_cause", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(64), nullable=True),
    ]:
        op.add_column("cases", col, schema=S)
    op.add_column("case_timeline", sa.Column("actor", sa.String(128), nullable=True), schema=S)
    # Existing cases: the SLA clock starts at opening (the monitor fills in the due times), a
    # contacted case was contacted when it was last updated.
    op.execute("UPDATE actions.cases SET sla_started_at = opened_at")
    op.execute("UPDATE actions.cases SET first_contacted_at = updated_at WHERE status = 'contacted'")
    # Before one open case per customer holds, older duplicates are closed into the newest one.
    op.execute(
        """
        WITH ranked AS (
            SELECT case_id, first_value(case_id) OVER w AS keep, row_number() OVER w AS n
            FROM actions.cases WHERE status IN ('open', 'contacted')
            WINDOW w AS (PARTITION BY tenant_id, customer_key ORDER BY opened_at DESC, case_id)
        ), closed AS (
            UPDATE actions.cases c SET status = 'closed', closed_at = now(), updated_at = now()
            FROM ranked r WHERE c.case_id = r.case_id AND r.n > 1 RETURNING c.case_id, r.keep
        )
        INSERT INTO actions.case_timeline (case_id, entry, detail, actor)
        SELECT case_id, 'merged', jsonb_build_object('into', keep::text), 'migration:0002' FROM closed
        """
    )
    op.create_index(
        "uq_cases_one_open_per_customer",
        "cases",
        ["tenant_id", "customer_key"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("status IN ('open', 'contacted')"),
    )
    op.create_index(
        "ix_cases_sla_due",
        "cases",
        ["sla_warn_at"],
        schema=S,
        postgresql_where=sa.text("status = 'open' AND first_contacted_at IS NULL"),
    )
    op.create_index(
        "ix_cases_escalation",
        "cases",
        ["next_escalation_at"],
        schema=S,
        postgresql_where=sa.text("next_escalation_at IS NOT NULL"),
    )

    op.create_table(
        "customers",
        sa.Column("customer_key", sa.String(256), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=True),
        sa.Column("current_band", sa.String(16), nullable=False),
        sa.Column("previous_band", sa.String(16), nullable=True),
        sa.Column("last_score", sa.SmallInteger(), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.Column("at_risk", sa.Boolean(), nullable=False),
        sa.Column("at_risk_since", TS, nullable=True),
        sa.Column("was_detractor", sa.Boolean(), nullable=False),
        sa.Column("recovered", sa.Boolean(), nullable=False),
        sa.Column("recovered_at", TS, nullable=True),
        sa.Column("surprise_pending", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("surprise_reason", sa.Text(), nullable=True),
        sa.Column("surprise_set_at", TS, nullable=True),
        sa.Column("last_store_id", sa.String(128), nullable=True),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        schema=S,
    )
    op.create_index("ix_customers_tenant_id", "customers", ["tenant_id", "customer_id"], schema=S)
    op.create_table(
        "visits",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("visit_id", sa.String(255), nullable=False),
        sa.Column("customer_key", sa.String(256), nullable=False),
        sa.Column("store_id", sa.String(128), nullable=True),
        sa.Column("cleared_surprise", sa.Boolean(), nullable=False),
        sa.Column("at", TS, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "visit_id"),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("visits", schema=S)
    op.drop_table("customers", schema=S)
    for name in ("ix_cases_escalation", "ix_cases_sla_due", "uq_cases_one_open_per_customer"):
        op.drop_index(name, table_name="cases", schema=S)
    op.drop_column("case_timeline", "actor", schema=S)
    for col in [
        "kind",
        "priority",
        "themes",
        "flags",
        "assignee",
        "sla_started_at",
        "sla_hours",
        "sla_fingerprint",
        "sla_warn_at",
        "sla_due_at",
        "warned_at",
        "breached_at",
        "escalation_level",
        "next_escalation_at",
        "first_contacted_at",
        "resolved_at",
        "closed_at",
        "root_cause",
        "outcome",
    ]:
        op.drop_column("cases", col, schema=S)
    op.drop_index("ix_feedback_customer", table_name="feedback", schema=S)
    for col in [
        "case_id",
        "theme_sentiments",
        "language",
        "locale",
        "contact",
        "consent_to_contact",
        "requested",
        "rules",
        "updated_at",
    ]:
        op.drop_column("feedback", col, schema=S)
