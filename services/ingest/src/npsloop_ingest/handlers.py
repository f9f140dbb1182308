"""Ingest's domain logic: what a posted answer becomes on the bus. No HTTP, no Kafka here."""

from __future__ import annotations

import uuid

from pydantic import AwareDatetime, ConfigDict, Field

from npsloop_schemas import FeedbackReceivedPayloadV1, FeedbackReceivedV1, customer_key, utcnow


class FeedbackIn(FeedbackReceivedPayloadV1):
    """What a till or web shop posts. Unknown fields are rejected, so a typo never loses data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Optional: the API key's tenant is used. If given, it must be the key's tenant.",
    )
    event_id: uuid.UUID | None = Field(
        default=None,
        description="Your idempotency key. Send the same id when you retry; omitted: generated.",
    )
    occurred_at: AwareDatetime | None = Field(
        default=None, description="When the customer answered (with timezone); omitted: now."
    )


def to_event(body: FeedbackIn, source: str, tenant_id: str) -> FeedbackReceivedV1:
    """The feedback.received.v1 event for a posted answer; its event_id is the caller's, if given."""
    event_id = body.event_id or uuid.uuid4()
    payload = FeedbackReceivedPayloadV1.model_validate(
        body.model_dump(exclude={"tenant_id", "event_id", "occurred_at"})
    )
    return FeedbackReceivedV1(
        event_id=event_id,
        occurred_at=body.occurred_at or utcnow(),
        tenant_id=tenant_id,
        source=source,
        correlation_id=event_id,
        payload=payload,
    )


class OutOfScope(Exception):
    """The key may not post this answer (another tenant, or a store outside its stores)."""


def check_scope(body: FeedbackIn, tenant_id: str, stores: frozenset[str] | None) -> None:
    if body.tenant_id is not None and body.tenant_id != tenant_id:
        raise OutOfScope(f"This key belongs to another tenant than {body.tenant_id!r}; omit tenant_id or use its own.")
    if stores is not None and body.store_id not in stores:
        raise OutOfScope(f"This key may post for the stores {sorted(stores)} only, not for store_id {body.store_id!r}.")


def key_of(event: FeedbackReceivedV1) -> str:
    """The message key: the customer, so that one customer's events stay in order."""
    return customer_key(event.tenant_id, event.payload.customer_id, event.event_id)
