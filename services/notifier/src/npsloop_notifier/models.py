"""Tables of the notifier, in the Postgres schema `notifier`."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, BigInteger, DateTime, ForeignKey, Index, Integer, MetaData, String, Text, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "notifier"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class DeliveryRow(Base):
    """One row per delivery id (unique): the dedupe that runs before any external call.

    Webhook deliveries keep their subscription, event and body: a failed one is replayed from it."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_tenant_created", "tenant_id", "created_at"),
        Index("ix_deliveries_subscription_status", "subscription_id", "status", "created_at"),
        Index("ix_deliveries_retry_due", "next_attempt_at", postgresql_where=text("status = 'retrying'")),
    )
    delivery_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # a NotificationKind, or 'webhook'
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_key: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16))  # pending | retrying | sent | failed | skipped | suppressed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    event_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    event_type: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str | None] = mapped_column(Text)  # webhooks: the event; others, while retrying: the request
    #: status 'retrying': when the redelivery loop tries next (the receiver was down).
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeliveryAttemptRow(Base):
    """The delivery log: every attempt, successful or not."""

    __tablename__ = "delivery_attempts"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey(f"{SCHEMA}.deliveries.delivery_id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    outcome: Mapped[str] = mapped_column(String(16))  # ok | error
    error: Mapped[str | None] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)


class WebhookSubscriptionRow(Base):
    """A CRM's endpoint. The secret signs (Standard Webhooks); after a rotation the previous one
    signs too, until `previous_valid_until`."""

    __tablename__ = "webhook_subscriptions"
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    description: Mapped[str | None] = mapped_column(String(256))
    secret: Mapped[str] = mapped_column(Text)
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | disabled
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SuppressionRow(Base):
    """Never contact this address or customer. Keyed by a hash of (tenant, kind, value): the list
    works without keeping the address itself; `hint` is a masked form for people."""

    __tablename__ = "suppressions"
    value_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # email | phone | customer
    hint: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(64))  # unsubscribed | admin | bounced | ...
    source: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ContactStateRow(Base):
    """The last customer-facing message per customer: the frequency cap, shared by every replica."""

    __tablename__ = "contact_state"
    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_key: Mapped[str] = mapped_column(String(256), primary_key=True)
    last_contact_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    previous_contact_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_delivery_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    last_kind: Mapped[str | None] = mapped_column(String(32))
