"""Event models, one class per event type and major version.

A published model is never edited incompatibly: add a `V2` class and an upcaster instead.
`tests/test_compat.py` holds every model against its JSON Schema snapshot in `schemas/jsonschema/`.
"""

from __future__ import annotations

import re
import uuid
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints
from pydantic_core import PydanticCustomError

from .envelope import Contract, Envelope
from .nps import Band, Score

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    Field(description="An email address (name@domain.tld)."),
]
PHONE_PATTERN = r"^\+?[0-9][0-9 ()./-]{5,30}$"
_PHONE = re.compile(PHONE_PATTERN)


def _phone(value: str) -> str:
    """Stripped when the stripped number matches; else as sent, when it matches as sent. The
    published pattern counts trailing spaces toward its 6 characters ("00000 "), which stripping
    first refused: whatever the published schema accepts, the models accept, and the value they
    keep parses again downstream."""
    stripped = value.strip()
    if _PHONE.fullmatch(stripped):
        return stripped
    if _PHONE.fullmatch(value):
        return value
    raise PydanticCustomError(
        "string_pattern_mismatch", "String should match pattern '{pattern}'", {"pattern": PHONE_PATTERN}
    )


Phone = Annotated[
    str,
    AfterValidator(_phone),
    Field(description="A phone number, ideally E.164 (+4915112345678).", json_schema_extra={"pattern": PHONE_PATTERN}),
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
    UNKNOWN = "unknown"  # a language the model does not support: never a guess


class Sentiment(Contract):
    label: SentimentLabel
    compound: float = Field(ge=-1, le=1, description="VADER compound score, -1..1.")
    model: str = Field(description="Which model produced it, e.g. 'vader-3.3.2'.")


class ThemeSentiment(Contract):
    """One theme of a comment with the sentiment of the clause that mentions it."""

    theme: str
    label: SentimentLabel
    compound: float = Field(ge=-1, le=1)


class FeedbackClassifiedPayloadV1(Contract):
    feedback_event_id: uuid.UUID
    feedback: FeedbackReceivedPayloadV1
    band: Band
    sentiment: Sentiment | None = Field(default=None, description="None when there is no comment.")
    themes: list[str] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    theme_sentiments: list[ThemeSentiment] = Field(default_factory=list)
    language: str | None = Field(default=None, description="ISO 639-1 code of the comment, when detected.")


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
    theme_sentiments: list[ThemeSentiment] = Field(default_factory=list)
    language: str | None = Field(default=None, description="ISO 639-1 code of the comment, when detected.")


class FeedbackReclassifiedV1(Envelope):
    event_type: Literal["feedback.reclassified"] = "feedback.reclassified"
    schema_version: Literal[1] = 1
    payload: FeedbackReclassifiedPayloadV1


# --- case.events.v1 ---------------------------------------------------------------------------------


class CaseStatus(StrEnum):
    OPEN = "open"
    CONTACTED = "contacted"
    RESOLVED = "resolved"
    CLOSED = "closed"


class CaseKind(StrEnum):
    CALLBACK = "callback"  # a detractor: someone calls them
    NURTURE = "nurture"  # a passive whose comment names a problem


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
    kind: CaseKind = CaseKind.CALLBACK
    priority: int | None = Field(default=None, ge=0, le=100, description="Higher is more urgent.")
    sla_due_at: AwareDatetime | None = Field(default=None, description="When the SLA is breached.")
    themes: list[str] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)


class CaseChange(StrEnum):
    """What a case.updated reports; `status` is the case's status after the change."""

    CONTACTED = "contacted"  # the customer was reached (a call recorded, or a delivery sent)
    ASSIGNED = "assigned"
    NOTE_ADDED = "note_added"
    FEEDBACK_ATTACHED = "feedback_attached"  # new feedback of the same customer joined the open case
    FEEDBACK_UPDATED = "feedback_updated"  # a late comment changed the case's feedback
    PRIORITY_CHANGED = "priority_changed"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    ESCALATED = "escalated"


class CaseUpdatedPayloadV1(Contract):
    case_id: uuid.UUID
    status: CaseStatus
    note: str | None = None
    change: CaseChange | None = Field(default=None, description="None in events from before the field existed.")
    store_id: str | None = None
    customer_key: str | None = None
    actor: str | None = Field(default=None, description="Who made the change: an API key prefix, or a service.")
    assignee: str | None = None
    priority: int | None = Field(default=None, ge=0, le=100)
    feedback_event_id: uuid.UUID | None = None
    root_cause: str | None = None
    outcome: str | None = None
    sla_due_at: AwareDatetime | None = None


class CaseClosedPayloadV1(Contract):
    case_id: uuid.UUID
    resolution: str
    store_id: str | None = None
    customer_key: str | None = None
    actor: str | None = None
    root_cause: str | None = None
    outcome: str | None = None


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


class CaseSlaPayloadV1(Contract):
    """An SLA milestone of an open case: a warning at 75% of its SLA, a breach at 100%."""

    case_id: uuid.UUID
    store_id: str | None = None
    customer_key: str
    segment: Band
    priority: int | None = Field(default=None, ge=0, le=100)
    opened_at: AwareDatetime
    due_at: AwareDatetime
    escalation_level: int = Field(default=0, ge=0, description="0: none; 1: store manager; 2: region; ...")
    escalated_to: list[str] = Field(default_factory=list, description="Who was told (a role or an address).")


class CaseSlaWarningV1(Envelope):
    event_type: Literal["case.sla_warning"] = "case.sla_warning"
    schema_version: Literal[1] = 1
    payload: CaseSlaPayloadV1


class CaseSlaBreachedV1(Envelope):
    event_type: Literal["case.sla_breached"] = "case.sla_breached"
    schema_version: Literal[1] = 1
    payload: CaseSlaPayloadV1


# --- notification.requested.v1 / notification.status.v1 --------------------------------------------


class NotificationKind(StrEnum):
    THANK_YOU_EMAIL = "thank_you_email"
    CALL_TASK = "call_task"
    NURTURE_EMAIL = "nurture_email"  # a passive: "what would make it a 10?"
    ACKNOWLEDGEMENT_EMAIL = "acknowledgement_email"  # a detractor: "we read it, someone will call you"
    REVIEW_INVITATION = "review_invitation"  # a promoter, where the store asks for reviews


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
    locale: str | None = Field(default=None, description="The answer's locale, for the template (e.g. 'de-DE').")
    channel: Channel | None = None
    band: Band | None = None


class NotificationRequestedV1(Envelope):
    event_type: Literal["notification.requested"] = "notification.requested"
    schema_version: Literal[1] = 1
    payload: NotificationRequestedPayloadV1


class DeliveryStatus(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    SUPPRESSED = "suppressed"  # the contact policy held it back (cap, opt-out, quiet hours); `reason` says which


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
