"""Event models, one class per event type and major version.

A published model is never edited incompatibly: add a `V2` class and an upcaster instead.
`tests/test_compat.py` holds every model against its JSON Schema snapshot in `schemas/jsonschema/`.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from .envelope import Contract, Envelope
from .nps import Band, Score

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    Field(description="An email address (name@domain.tld)."),
]
Phone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9 ()./-]{5,30}$"),
    Field(description="A phone number, ideally E.164 (+4915112345678)."),
]


class Channel(StrEnum):
    POS = "pos"
    WEB = "web"
    APP = "app"
    EMAIL = "email"
    SMS = "sms"
    KIOSK = "kiosk"
    CALL_CENTER = "call_center"
    OTHER = "other"


class Contact(Contract):
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    email: Email | None = None
    phone: Phone | None = None


# --- feedback.received.v1 ---------------------------------------------------------------------------


class FeedbackReceivedPayloadV1(Contract):
    score: Score
    comment: Annotated[str, StringConstraints(max_length=5000)] | None = None
    customer_id: ShortText | None = Field(default=None, description="The retailer's customer id, if known.")
    contact: Contact | None = None
    store_id: ShortText | None = None
    channel: Channel
    locale: Annotated[str, StringConstraints(max_length=35)] | None = None
    consent_to_contact: bool = Field(default=True, description="False: never contact this customer.")


class FeedbackReceivedV1(Envelope):
    event_type: Literal["feedback.received"] = "feedback.received"
    schema_version: Literal[1] = 1
    payload: FeedbackReceivedPayloadV1


# --- feedback.updated.v1 ----------------------------------------------------------------------------

UpdatableField = Literal["comment", "contact", "locale", "consent_to_contact"]


class FeedbackUpdatedPayloadV1(Contract):
    """A late change to an answer already accepted (a comment sent minutes after the score).

    Published by ingest on `feedback.received.v1` with the original's message key, so it is ordered
    after the answer it changes. `fields` names what this update sets; a field not named is unchanged.
    """

    feedback_event_id: uuid.UUID = Field(description="The event_id of the feedback.received it changes.")
    fields: list[UpdatableField] = Field(min_length=1, description="The fields this update sets.")
    comment: Annotated[str, StringConstraints(max_length=5000)] | None = None
    contact: Contact | None = None
    locale: Annotated[str, StringConstraints(max_length=35)] | None = None
    consent_to_contact: bool | None = None


class FeedbackUpdatedV1(Envelope):
    event_type: Literal["feedback.updated"] = "feedback.updated"
    schema_version: Literal[1] = 1
    payload: FeedbackUpdatedPayloadV1


# --- feedback.classified.v1 -------------------------------------------------------------------------


class SentimentLabel(StrEnum):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"


class Sentiment(Contract):
    label: SentimentLabel
    compound: float = Field(ge=-1, le=1, description="VADER compound score, -1..1.")
    model: str = Field(description="Which model produced it, e.g. 'vader-3.3.2'.")


class FeedbackClassifiedPayloadV1(Contract):
    feedback_event_id: uuid.UUID
    feedback: FeedbackReceivedPayloadV1
    band: Band
    sentiment: Sentiment | None = Field(default=None, description="None when there is no comment.")
    themes: list[str] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)


class FeedbackClassifiedV1(Envelope):
    event_type: Literal["feedback.classified"] = "feedback.classified"
    schema_version: Literal[1] = 1
    payload: FeedbackClassifiedPayloadV1


class FeedbackReclassifiedPayloadV1(Contract):
    """The classifier's answer to a feedback.updated: the new text classified. The band is not here:
    the score never changes, and the consumer that stored the feedback knows it."""

    feedback_event_id: uuid.UUID
    update_event_id: uuid.UUID = Field(description="The event_id of the feedback.updated classified.")
    update: FeedbackUpdatedPayloadV1
    sentiment: Sentiment | None = Field(default=None, description="None when the update has no comment.")
    themes: list[str] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)


class FeedbackReclassifiedV1(Envelope):
    event_type: Literal["feedback.reclassified"] = "feedback.reclassified"
    schema_version: Literal[1] = 1
    payload: FeedbackReclassifiedPayloadV1


# --- case.events.v1 ---------------------------------------------------------------------------------


class CaseStatus(StrEnum):
    OPEN = "open"
    CONTACTED = "contacted"
    CLOSED = "closed"


class CaseOpenedPayloadV1(Contract):
    case_id: uuid.UUID
    feedback_event_id: uuid.UUID
    customer_key: str
    segment: Band
    score: Score
    store_id: str | None = None
    channel: Channel
    comment: str | None = None
    reason: str


class CaseUpdatedPayloadV1(Contract):
    case_id: uuid.UUID
    status: CaseStatus
    note: str | None = None


class CaseClosedPayloadV1(Contract):
    case_id: uuid.UUID
    resolution: str


class CaseOpenedV1(Envelope):
    event_type: Literal["case.opened"] = "case.opened"
    schema_version: Literal[1] = 1
    payload: CaseOpenedPayloadV1


class CaseUpdatedV1(Envelope):
    event_type: Literal["case.updated"] = "case.updated"
    schema_version: Literal[1] = 1
    payload: CaseUpdatedPayloadV1


class CaseClosedV1(Envelope):
    event_type: Literal["case.closed"] = "case.closed"
    schema_version: Literal[1] = 1
    payload: CaseClosedPayloadV1


# --- notification.requested.v1 / notification.status.v1 --------------------------------------------


class NotificationKind(StrEnum):
    THANK_YOU_EMAIL = "thank_you_email"
    CALL_TASK = "call_task"
    NURTURE_EMAIL = "nurture_email"


class NotificationRequestedPayloadV1(Contract):
    delivery_id: uuid.UUID = Field(description="Unique per intended delivery; the notifier dedupes on it.")
    kind: NotificationKind
    customer_key: str
    recipient: Contact
    feedback_event_id: uuid.UUID
    case_id: uuid.UUID | None = None
    score: Score
    store_id: str | None = None
    comment: str | None = None


class NotificationRequestedV1(Envelope):
    event_type: Literal["notification.requested"] = "notification.requested"
    schema_version: Literal[1] = 1
    payload: NotificationRequestedPayloadV1


class DeliveryStatus(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class NotificationStatusPayloadV1(Contract):
    delivery_id: uuid.UUID
    kind: NotificationKind
    status: DeliveryStatus
    attempts: int = Field(ge=0)
    reason: str | None = None
    case_id: uuid.UUID | None = None
    feedback_event_id: uuid.UUID


class NotificationStatusV1(Envelope):
    event_type: Literal["notification.status"] = "notification.status"
    schema_version: Literal[1] = 1
    payload: NotificationStatusPayloadV1
