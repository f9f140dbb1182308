"""Ingest's domain logic: what a posted answer becomes on the bus. No HTTP, no Kafka here."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from npsloop_platform.text import CleanText
from npsloop_schemas import (
    Contact,
    FeedbackReceivedPayloadV1,
    FeedbackReceivedV1,
    FeedbackUpdatedPayloadV1,
    FeedbackUpdatedV1,
    customer_key,
    derive_id,
    utcnow,
)
from npsloop_schemas.events import Email, Phone

#: occurred_at may not be before this, nor more than a day ahead of now.
OCCURRED_FLOOR = datetime(2000, 1, 1, tzinfo=UTC)
OCCURRED_AHEAD = timedelta(days=1)


def _iso_text_only(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("must be an ISO 8601 date-time with a timezone, e.g. 2026-11-23T10:15:00+01:00, not a number")
    return value


def _within_bounds(value: datetime) -> datetime:
    if value < OCCURRED_FLOOR:
        raise ValueError(f"is before {OCCURRED_FLOOR.date()}, the earliest accepted")
    if value > utcnow() + OCCURRED_AHEAD:
        raise ValueError("is more than a day in the future")
    return value


Comment = Annotated[str, StringConstraints(max_length=5000), CleanText]
Id = Annotated[str, StringConstraints(min_length=1, max_length=128), CleanText]
Name = Annotated[str, StringConstraints(max_length=200), CleanText]
EmailIn = Annotated[Email, CleanText]
PhoneIn = Annotated[Phone, CleanText]
Locale = Annotated[str, StringConstraints(max_length=35), CleanText]


class ContactIn(Contact):
    """Contact details as posted: unknown keys are refused here too, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name | None = None
    email: EmailIn | None = None
    phone: PhoneIn | None = None


FEEDBACK_EXAMPLES: list[JsonValue] = [
    {
        "store_id": "berlin-1",
        "channel": "pos",
        "score": 3,
        "comment": "Long wait at the till",
        "customer_id": "c-42",
        "contact": {"phone": "+49 151 1234567"},
    },
    {
        "event_id": "5b9f3c1e-8f2a-4c7b-9d1e-2a3b4c5d6e7f",
        "store_id": "berlin-1",
        "channel": "web",
        "score": 10,
        "occurred_at": "2026-11-23T10:15:00+01:00",
        "customer_id": "c-43",
        "contact": {"email": "ann@example.com"},
        "locale": "de-DE",
    },
]


class FeedbackIn(FeedbackReceivedPayloadV1):
    """What a till or web shop posts. Unknown fields are rejected, so a typo never loses data."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": FEEDBACK_EXAMPLES})

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
    occurred_at: Annotated[AwareDatetime, BeforeValidator(_iso_text_only), AfterValidator(_within_bounds)] | None = (
        Field(
            default=None,
            description="When the customer answered (ISO 8601 with timezone), from 2000-01-01 to a day ahead; "
            "omitted: now.",
        )
    )
    comment: Comment | None = None
    customer_id: Id | None = Field(default=None, description="The retailer's customer id, if known.")
    store_id: Id | None = None
    locale: Locale | None = None
    contact: ContactIn | None = None
    consent_to_contact: StrictBool = Field(default=True, description="false: store and count, never contact.")


def to_event(body: FeedbackIn, source: str, tenant_id: str, now: datetime | None = None) -> FeedbackReceivedV1:
    """The feedback.received.v1 event for a posted answer; its event_id is the caller's, if given.
    `now`: when it was recorded (one clock read for a whole batch)."""
    event_id = body.event_id or uuid.uuid4()
    now = now or utcnow()
    # The body is the payload: FeedbackIn is a FeedbackReceivedPayloadV1, validated as strictly or
    # more, and a field serializes as its declared type, so tenant_id, event_id and occurred_at
    # stay out of the payload. Dumping and validating it again cost a fifth of a post's CPU.
    return FeedbackReceivedV1(
        event_id=event_id,
        occurred_at=body.occurred_at or now,
        recorded_at=now,
        tenant_id=tenant_id,
        source=source,
        correlation_id=event_id,
        payload=body,
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


class FeedbackPatchIn(BaseModel):
    """A late change to an answer already accepted: a comment sent after the score, a corrected
    contact or locale, or withdrawn consent. Only the fields sent change; `null` clears one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    comment: Comment | None = None
    contact: ContactIn | None = None
    locale: Locale | None = None
    consent_to_contact: StrictBool | SkipJsonSchema[None] = None  # true or false; null is refused

    @model_validator(mode="after")
    def _something(self) -> FeedbackPatchIn:
        if not self.model_fields_set:
            raise ValueError("send at least one of comment, contact, locale, consent_to_contact")
        if "consent_to_contact" in self.model_fields_set and self.consent_to_contact is None:
            raise ValueError("consent_to_contact must be true or false")
        return self


def update_event_id(feedback_event_id: uuid.UUID, digest: str) -> uuid.UUID:
    """The same change to the same answer is the same event: a retried PATCH publishes nothing new."""
    return derive_id(f"feedback.updated:{digest}", feedback_event_id)


def to_update_event(
    patch: FeedbackPatchIn, feedback_event_id: uuid.UUID, digest: str, source: str, tenant_id: str
) -> FeedbackUpdatedV1:
    fields = sorted(patch.model_fields_set)
    payload = FeedbackUpdatedPayloadV1.model_validate(
        {"feedback_event_id": feedback_event_id, "fields": fields, **patch.model_dump(include=set(fields))}
    )
    return FeedbackUpdatedV1(
        event_id=update_event_id(feedback_event_id, digest),
        occurred_at=utcnow(),
        tenant_id=tenant_id,
        source=source,
        correlation_id=feedback_event_id,  # the answer's journey: its correlation id is its event id
        causation_id=feedback_event_id,
        payload=payload,
    )
