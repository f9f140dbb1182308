"""Tables of the reporting read model, all in the Postgres schema `reporting`.

Everything here is folded from events (feedback.*, case.*, notification.status); nothing is read
from another service's tables. Store facts (time zone, region) are copied in when an event is
folded, from the store directory: after changing the directory, rebuild (`npsloop reporting rebuild`).
`local_at` is the moment in the store's own time zone, so that a day, a week (Monday to Sunday),
a month, a quarter and a year are the store's, in SQL, without a time zone per query.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Float, Index, MetaData, SmallInteger, String, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "reporting"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class InboxRow(Base):
    """Every folded event_id, once: redelivery and replays fold nothing twice."""

    __tablename__ = "inbox"
    event_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ResponseRow(Base):
    """One NPS answer (feedback.classified), with its latest text (feedback.reclassified)."""

    __tablename__ = "responses"
    feedback_event_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[str | None] = mapped_column(String(128))
    region: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(32))
    customer_key: Mapped[str] = mapped_column(Text)
    score: Mapped[int] = mapped_column(SmallInteger)
    band: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(Text)
    sentiment: Mapped[str | None] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    local_at: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    text_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the text's event time

    __table_args__ = (
        Index("ix_responses_tenant_local", "tenant_id", "local_at"),
        Index("ix_responses_tenant_store_local", "tenant_id", "store_id", "local_at"),
        Index("ix_responses_customer", "tenant_id", "customer_key", "occurred_at"),
    )


class ResponseThemeRow(Base):
    """The themes of an answer's comment, each with the sentiment of the clause naming it."""

    __tablename__ = "response_themes"
    feedback_event_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    theme: Mapped[str] = mapped_column(String(128), primary_key=True)
    sentiment: Mapped[str | None] = mapped_column(String(16))
    compound: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("ix_response_themes_theme", "theme"),)


class PendingTextRow(Base):
    """A feedback.reclassified folded before its answer (another batch's turn): applied on arrival."""

    __tablename__ = "pending_texts"
    feedback_event_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    comment: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(Text)
    sentiment: Mapped[str | None] = mapped_column(String(16))
    themes: Mapped[str] = mapped_column(Text)  # JSON [[theme, sentiment, compound], ...]
    text_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CaseRow(Base):
    """A follow-up case, folded from case.* events in any order: every column keeps the value of
    the event that decides it (the first contact, the first resolution, the latest status)."""

    __tablename__ = "cases"
    case_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[str | None] = mapped_column(String(128))
    region: Mapped[str | None] = mapped_column(Text)
    customer_key: Mapped[str | None] = mapped_column(Text)
    feedback_event_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    kind: Mapped[str | None] = mapped_column(String(32))
    segment: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[int | None] = mapped_column(SmallInteger)
    priority: Mapped[int | None] = mapped_column(SmallInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opened_local: Mapped[datetime | None] = mapped_column(DateTime(timezone=False))
    sla_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_contact_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sla_warned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sla_breached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    root_cause: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(Text)
    # when the value above was set: the latest event that carried one wins, whatever the arrival order
    priority_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    root_cause_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_cases_tenant_opened", "tenant_id", "opened_local"),)


class DeliveryRow(Base):
    """The last status of each notifier delivery (a nurture email sent: a passive was asked)."""

    __tablename__ = "deliveries"
    delivery_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    feedback_event_id: Mapped[uuid.UUID] = mapped_column(UUID, index=True)
    case_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DigestRow(Base):
    """One weekly digest per scope (a store, or `region:<name>`) and ISO week, claimed before sending."""

    __tablename__ = "digests"
    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(160), primary_key=True)
    week: Mapped[str] = mapped_column(String(8), primary_key=True)  # 2026-W47
    status: Mapped[str] = mapped_column(String(16))  # claimed, sent, failed
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recipients: Mapped[int] = mapped_column(SmallInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text)
