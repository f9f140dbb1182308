"""Ingest's one table, in the Postgres schema `ingest`: what it accepted, for idempotency."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, MetaData, String, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "ingest"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class AcceptedRow(Base):
    """One row per (tenant, event id): the body's hash, and whether Kafka acknowledged it."""

    __tablename__ = "accepted"
    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # pending | published
    # The message key and store of the answer, so that a late PATCH publishes on the same key and
    # respects a store-scoped key. NULL for rows from before migration 0002, and for updates.
    customer_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    store_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
