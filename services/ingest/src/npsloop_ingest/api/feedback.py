"""POST /v1/feedback: validate, publish feedback.received.v1, answer 202 only after Kafka's ack."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from npsloop_platform.access.http import SourceDep
from npsloop_platform.app import BusDep, settings_dependency
from npsloop_schemas import Topics, serialize_event

from ..config import IngestSettings
from ..handlers import FeedbackIn, OutOfScope, check_scope, key_of, to_event
from ..publishing import PublishFailed, publish_with_deadline
from ..ratelimit import RateLimiter

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["feedback"])
SettingsDep = Annotated[IngestSettings, Depends(settings_dependency(IngestSettings))]

__all__ = ["FeedbackIn", "router"]


def limiter_of(request: Request, settings: IngestSettings) -> RateLimiter:
    """One limiter per app (per replica), made on first use."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None:
        limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
        request.app.state.rate_limiter = limiter
    return limiter


class Accepted(BaseModel):
    status: str = "accepted"
    event_id: uuid.UUID
    correlation_id: uuid.UUID
    topic: str


@router.post(
    "/feedback",
    status_code=202,
    response_model=Accepted,
    responses={
        401: {"description": "No API key, a malformed header, or a wrong or revoked key."},
        403: {"description": "The key may not post this: wrong role, another tenant, or a store outside its scope."},
        422: {"description": "The body is invalid: `detail` names each field and the reason."},
        429: {"description": "This key posted too much: wait `Retry-After` seconds. See `RateLimit-*` headers."},
        503: {"description": "The broker did not acknowledge in time; nothing was accepted. Retry."},
    },
    summary="Submit one NPS answer. 202 means Kafka has durably written it.",
)
async def post_feedback(
    body: FeedbackIn, bus: BusDep, settings: SettingsDep, principal: SourceDep, request: Request, response: Response
) -> Accepted | JSONResponse:
    verdict = limiter_of(request, settings).check(principal.prefix)
    response.headers.update(verdict.headers())
    if not verdict.allowed:
        return JSONResponse(
            status_code=429,
            headers=verdict.headers(),
            content={"detail": f"Rate limit of this key exceeded; retry after {verdict.retry_after_s} s."},
        )
    try:
        check_scope(body, principal.tenant_id, principal.stores)
    except OutOfScope as exc:
        return JSONResponse(status_code=403, content={"detail": str(exc)})
    event = to_event(body, settings.source_name, principal.tenant_id)
    try:
        await publish_with_deadline(
            bus, Topics.FEEDBACK_RECEIVED, serialize_event(event), key_of(event), settings.publish_timeout_s
        )
    except PublishFailed as exc:
        log.warning(
            "feedback not accepted: %s",
            exc,
            extra={"event_id": str(event.event_id), "correlation_id": str(event.correlation_id)},
        )
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
