"""Tables of the actions service, all in the Postgres schema `actions`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "actions"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class InboxRow(Base):
    """Every consumed event_id, once. The unique key makes redelivery a no-op."""

    __tablename__ = "inbox"
    event_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class FeedbackRow(Base):
    __tablename__ = "feedback"
    feedback_event_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_key: Mapped[str] = mapped_column(String(256))
    score: Mapped[int] = mapped_column(SmallInteger)
    band: Mapped[str] = mapped_column(String(16))
    sentiment_label: Mapped[str | None] = mapped_column(String(16))
    sentiment_compound: Mapped[float | None] = mapped_column(Float)
    themes: Mapped[list[str]] = mapped_column(JSONB, default=list)
    flags: Mapped[list[str]] = mapped_column(JSONB, default=list)
    comment: Mapped[str | None] = mapped_column(Text)
    store_id: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    case_id: Mapped[uuid.UUID | None] = mapped_column(UUID)  # the case it opened or joined
    theme_sentiments: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    language: Mapped[str | None] = mapped_column(String(16))
    locale: Mapped[str | None] = mapped_column(String(35))
    contact: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # to re-run the rules after a late comment
    consent_to_contact: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    requested: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))  # notification kinds
    rules: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))  # policy rules matched
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_feedback_tenant_store_time", "tenant_id", "store_id", "occurred_at"),
        Index("ix_feedback_customer", "customer_key", "occurred_at"),
    )


class CaseRow(Base):
    __tablename__ = "cases"
    case_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    feedback_event_id: Mapped[uuid.UUID] = mapped_column(UUID, unique=True)
    customer_key: Mapped[str] = mapped_column(String(256))
    segment: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    store_id: Mapped[str | None] = mapped_column(String(128))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    kind: Mapped[str] = mapped_column(String(16), server_default=text("'callback'"))
    priority: Mapped[int] = mapped_column(SmallInteger, server_default=text("50"))
    themes: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    flags: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    assignee: Mapped[str | None] = mapped_column(String(128))
    # The SLA: business hours from sla_started_at to first contact; the monitor re-applies it
    # (sla_fingerprint) when the policy's SLA changes.
    sla_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sla_hours: Mapped[float | None] = mapped_column(Float)
    sla_fingerprint: Mapped[str | None] = mapped_column(String(32))
    sla_warn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sla_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    warned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    breached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalation_level: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    next_escalation_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_contacted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    root_cause: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_cases_tenant_status", "tenant_id", "status"),
        # One open case per customer: the database decides between racing writers.
        Index(
            "uq_cases_one_open_per_customer",
            "tenant_id",
            "customer_key",
            unique=True,
            postgresql_where=text("status IN ('open', 'contacted')"),
        ),
        Index(
            "ix_cases_sla_due", "sla_warn_at", postgresql_where=text("status = 'open' AND first_contacted_at IS NULL")
        ),
        Index("ix_cases_escalation", "next_escalation_at", postgresql_where=text("next_escalation_at IS NOT NULL")),
    )


class CaseTimelineRow(Base):
    __tablename__ = "case_timeline"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey(f"{SCHEMA}.cases.case_id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    entry: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    actor: Mapped[str | None] = mapped_column(String(128))


class CustomerRow(Base):
    """A customer's journey: the band now and before, the markers, what the till should do next."""

    __tablename__ = "customers"
    customer_key: Mapped[str] = mapped_column(String(256), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str | None] = mapped_column(String(128))
    current_band: Mapped[str] = mapped_column(String(16))
    previous_band: Mapped[str | None] = mapped_column(String(16))
    last_score: Mapped[int] = mapped_column(SmallInteger)
    answers: Mapped[int] = mapped_column(Integer)
    at_risk: Mapped[bool] = mapped_column(Boolean)
    at_risk_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    was_detractor: Mapped[bool] = mapped_column(Boolean)
    recovered: Mapped[bool] = mapped_column(Boolean)
    recovered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    surprise_pending: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    surprise_reason: Mapped[str | None] = mapped_column(Text)
    surprise_set_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_store_id: Mapped[str | None] = mapped_column(String(128))
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_customers_tenant_id", "tenant_id", "customer_id"),)


class VisitRow(Base):
    """Each acknowledged visit, once per visit id: a retried POST answers what the first one did."""

    __tablename__ = "visits"
    tenant_id: Mapped[str] = mapped_column(String(64))
    visit_id: Mapped[str] = mapped_column(String(255))
    customer_key: Mapped[str] = mapped_column(String(256))
    store_id: Mapped[str | None] = mapped_column(String(128))
    cleared_surprise: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (PrimaryKeyConstraint("tenant_id", "visit_id"),)


class OutboxRow(Base):
    """Events to publish, written in the same transaction as the change they announce."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(255))
    key: Mapped[str | None] = mapped_column(String(256))
    event_id: Mapped[uuid.UUID] = mapped_column(UUID)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),)
