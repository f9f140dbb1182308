"""Tables of the actions service, all in the Postgres schema `actions`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
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

    __table_args__ = (Index("ix_feedback_tenant_store_time", "tenant_id", "store_id", "occurred_at"),)


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

    __table_args__ = (Index("ix_cases_tenant_status", "tenant_id", "status"),)


class CaseTimelineRow(Base):
    __tablename__ = "case_timeline"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey(f"{SCHEMA}.cases.case_id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    entry: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


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
