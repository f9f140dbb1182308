"""POST /v1/feedback: validate, publish feedback.received.v1, answer 202 only after Kafka's ack."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from npsloop_platform.bus import Bus
from npsloop_schemas import (
    FeedbackReceivedPayloadV1,
    FeedbackReceivedV1,
    Topics,
    customer_key,
    serialize_event,
    utcnow,
)

from ..config import IngestSettings
from ..publishing import PublishFailed, publish_with_deadline

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["feedback"])


class FeedbackIn(FeedbackReceivedPayloadV1):
    """What a till or web shop posts. Unknown fields are rejected, so a typo never loses data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    event_id: uuid.UUID | None = Field(
        default=None,
        description="Your idempotency key. Send the same id when you retry; omitted: generated.",
    )
    occurred_at: AwareDatetime | None = Field(
        default=None, description="When the customer answered (with timezone); omitted: now."
    )


class Accepted(BaseModel):
    status: str = "accepted"
    event_id: uuid.UUID
    correlation_id: uuid.UUID
    topic: str


def get_bus(request: Request) -> Bus:
    bus: Bus = request.app.state.bus
    return bus


def get_settings(request: Request) -> IngestSettings:
    settings: IngestSettings = request.app.state.settings
    return settings


def to_event(body: FeedbackIn, source: str) -> FeedbackReceivedV1:
    event_id = body.event_id or uuid.uuid4()
    payload = FeedbackReceivedPayloadV1.model_validate(
        body.model_dump(exclude={"tenant_id", "event_id", "occurred_at"})
    )
    return FeedbackReceivedV1(
        event_id=event_id,
        occurred_at=body.occurred_at or utcnow(),
        tenant_id=body.tenant_id,
        source=source,
        correlation_id=event_id,
        payload=payload,
    )


@router.post(
    "/feedback",
    status_code=202,
    response_model=Accepted,
    responses={
        422: {"description": "The body is invalid: `detail` names each field and the reason."},
        503: {"description": "The broker did not acknowledge in time; nothing was accepted. Retry."},
    },
    summary="Submit one NPS answer. 202 means Kafka has durably written it.",
)
async def post_feedback(
    body: FeedbackIn,
    bus: Annotated[Bus, Depends(get_bus)],
    settings: Annotated[IngestSettings, Depends(get_settings)],
) -> Accepted | JSONResponse:
    event = to_event(body, settings.source_name)
    key = customer_key(event.tenant_id, event.payload.customer_id, event.event_id)
    try:
        await publish_with_deadline(
            bus, Topics.FEEDBACK_RECEIVED, serialize_event(event), key, settings.publish_timeout_s
        )
    except PublishFailed as exc:
        log.warning("feedback %s not accepted: %s", event.event_id, exc)
        return JSONResponse(
            status_code=503,
            headers={"Retry-After": str(settings.retry_after_s)},
            content={
                "detail": "The event broker is unavailable; nothing was accepted. Retry with the same "
                "event_id after Retry-After seconds.",
                "event_id": str(event.event_id),
            },
        )
    return Accepted(event_id=event.event_id, correlation_id=event.correlation_id, topic=Topics.FEEDBACK_RECEIVED)
