"""PATCH /v1/feedback/{event_id}: a late comment (or contact, locale, consent) for an answer already
accepted. Published as feedback.updated.v1 on the answer's own message key, so it is ordered after
the answer; downstream merges it into the same feedback and case and classifies the new text."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from npsloop_platform.access.http import SourceDep
from npsloop_platform.app import BusDep
from npsloop_platform.http_edge import StrictJsonRoute
from npsloop_schemas import Topics

from ..handlers import FeedbackPatchIn, to_update_event
from ..idempotency import Claim, Item, body_hash
from .feedback import SettingsDep, _answer, publish_all, rate_limit, store_of, unavailable

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["feedback"], route_class=StrictJsonRoute)

PATCH_EXAMPLES = {
    "late comment": {"summary": "The comment, minutes after the score", "value": {"comment": "The queue was endless"}},
    "withdraw consent": {"summary": "Never contact this customer", "value": {"consent_to_contact": False}},
}


class UpdateAccepted(BaseModel):
    status: str = Field(default="accepted", description="accepted, or duplicate for a repeat of the same change.")
    event_id: uuid.UUID = Field(description="The feedback.updated event's id (derived from the answer and the change).")
    feedback_event_id: uuid.UUID
    fields: list[str]
    topic: str


NOT_FOUND = {
    "detail": "No answer with this event_id in your tenant (or it is past the retention window); nothing was published."
}


@router.patch(
    "/feedback/{event_id}",
    status_code=202,
    response_model=UpdateAccepted,
    responses={
        200: {"description": "A repeat of a change already accepted: `status` is `duplicate`; nothing was published."},
        401: {"description": "No API key, a malformed header, or a wrong or revoked key."},
        403: {"description": "The key may not post feedback (wrong role)."},
        404: {"description": "No such answer in your tenant or your key's stores, or past the retention window."},
        409: {"description": "The answer was claimed but its publish is not acknowledged yet: retry its POST first."},
        413: {"description": "The body is over the limit (NPSLOOP_MAX_BODY_BYTES, 1 MiB)."},
        415: {"description": "The body is encoded (Content-Encoding); send plain JSON."},
        422: {"description": "The body is invalid, empty, or names a field that cannot change (score, store_id...)."},
        429: {"description": "This key posted too much: wait `Retry-After` seconds."},
        503: {"description": "The broker did not acknowledge in time; nothing was accepted. Retry."},
    },
    summary="Change an accepted answer: a late comment, contact, locale or consent. 202 once Kafka has it.",
    openapi_extra={"requestBody": {"content": {"application/json": {"examples": PATCH_EXAMPLES}}}},
)
async def patch_feedback(
    patch: FeedbackPatchIn,
    event_id: Annotated[uuid.UUID, Path(description="The event_id of the answer to change.")],
    bus: BusDep,
    settings: SettingsDep,
    principal: SourceDep,
    request: Request,
    response: Response,
) -> Response:
    headers, too_many = rate_limit(request.app, settings, principal, response)
    if too_many is not None:
        return too_many
    store = store_of(request.app)
    original = await store.find(principal.tenant_id, event_id)
    in_scope = original is not None and (principal.stores is None or original.store_id in principal.stores)
    if original is None or not in_scope:
        return JSONResponse(status_code=404, content=NOT_FOUND)  # another store's answer: existence never leaks
    if not original.published or original.customer_key is None:
        reason = (
            "This answer's publish is not acknowledged yet; retry its POST with the same event_id first."
            if not original.published
            else "This answer was accepted before late changes were supported and cannot be changed."
        )
        return JSONResponse(status_code=409, content={"detail": reason, "event_id": str(event_id)})
    digest = body_hash(patch.model_dump(mode="json", exclude_unset=True))
    event = to_update_event(patch, event_id, digest, settings.source_name, principal.tenant_id)
    item = Item(principal.tenant_id, event.event_id, digest)
    (claim,) = await store.claim([item])
    answer = UpdateAccepted(
        event_id=event.event_id,
        feedback_event_id=event_id,
        fields=list(event.payload.fields),
        topic=Topics.FEEDBACK_RECEIVED,
    )
    if claim is Claim.DUPLICATE:
        return _answer(200, answer.model_copy(update={"status": "duplicate"}), headers)
    failure = await publish_all(bus, [event], settings.publish_timeout_s, keys=[original.customer_key])
    if failure is not None:
        await store.release([item])
        log.warning("feedback update not accepted: %s", failure, extra={"event_id": str(event.event_id)})
        return unavailable(settings, [str(event.event_id)])
    store.mark_published_later([item])
    return _answer(202, answer, headers)
