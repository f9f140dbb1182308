"""POST /v1/feedback and POST /v1/feedback:batch: validate, claim the event id, publish
feedback.received.v1, answer 2xx only after Kafka's ack."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import to_json
from starlette.applications import Starlette

from npsloop_platform.access.http import SourceDep
from npsloop_platform.access.keys import Principal
from npsloop_platform.app import AppState, settings_dependency
from npsloop_platform.bus import Bus
from npsloop_platform.http_edge import StrictJsonRoute, clean_errors
from npsloop_schemas import Envelope, FeedbackReceivedV1, Topics, serialize_event, utcnow

from ..config import IngestSettings
from ..handlers import FEEDBACK_EXAMPLES, FeedbackIn, OutOfScope, check_scope, key_of, to_event
from ..idempotency import Claim, IdempotencyStore, Item, body_hash, event_id_for
from ..ratelimit import RateLimiter

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["feedback"], route_class=StrictJsonRoute)
SettingsDep = Annotated[IngestSettings, Depends(settings_dependency(IngestSettings))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Instead of an event_id: the event id is derived from this key (and your tenant).",
    ),
]
ITEM = TypeAdapter(FeedbackIn)
ITEMS = TypeAdapter(list[FeedbackIn])
MAX_BATCH = 1000
#: What the digest leaves out: the id it is stored under, and the tenant the key already names.
#: One set, made once: a literal would be built on every call.
NOT_HASHED: set[str] = {"event_id", "tenant_id"}  # never changed

__all__ = ["FeedbackIn", "router"]


class Accepted(BaseModel):
    status: str = Field(default="accepted", description="accepted, or duplicate for a repeat of the same body.")
    event_id: uuid.UUID
    correlation_id: uuid.UUID
    topic: str


def rate_limit(
    app: Starlette,
    settings: IngestSettings,
    principal: Principal,
    response: Response | None,
    cost: int = 1,
) -> tuple[dict[str, str], JSONResponse | None]:
    """The RateLimit-* headers (for every answer; set on `response` too, if given), and the 429 for a
    key over its limit, or None."""
    verdict = limiter_of(app, settings).check(principal.prefix, cost=cost)
    headers = verdict.headers()
    if response is not None:
        response.headers.update(headers)
    if verdict.allowed:
        return headers, None
    content = {"detail": f"Rate limit of this key exceeded; retry after {verdict.retry_after_s} s."}
    return headers, JSONResponse(status_code=429, headers=headers, content=content)


def limiter_of(app: Starlette, settings: IngestSettings) -> RateLimiter:
    """One limiter per app (per replica), made on first use."""
    limiter: RateLimiter | None = getattr(app.state, "rate_limiter", None)
    if limiter is None:
        limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
        app.state.rate_limiter = limiter
    return limiter


def parts_of(app: Starlette) -> tuple[Bus, IngestSettings]:
    """The bus and settings, read here rather than as dependencies: each dependency FastAPI solves
    costs CPU on every request, and these two never fail."""
    state: AppState = app.state.npsloop
    settings = state.settings
    if not isinstance(settings, IngestSettings):
        raise RuntimeError(f"this app runs with {type(settings).__name__}, not IngestSettings")
    return state.bus, settings


def store_of(app: Starlette) -> IdempotencyStore:
    store: IdempotencyStore = app.state.npsloop.extras["idempotency"]
    return store


def prepare(
    body: FeedbackIn, principal: Principal, key: str | None, source: str, now: datetime | None = None
) -> tuple[FeedbackReceivedV1, Item]:
    """The event for a checked body, and its idempotency claim. The body's own event_id wins over
    an Idempotency-Key; with neither, the id is new."""
    check_scope(body, principal.tenant_id, principal.stores)
    if body.event_id is None and key is not None:
        body = body.model_copy(update={"event_id": event_id_for(principal.tenant_id, key)})
    event = to_event(body, source, principal.tenant_id, now)
    digest = body_hash(body.model_dump(mode="json", exclude=NOT_HASHED))
    item = Item(principal.tenant_id, event.event_id, digest, key_of(event), event.payload.store_id)
    return event, item


async def publish_all(
    bus: Bus, events: Sequence[Envelope], timeout_s: float, keys: list[str] | None = None
) -> BaseException | None:
    """Send every event (on its customer's key, or on `keys`), await every ack once; the first failure, or None."""
    try:
        async with asyncio.timeout(timeout_s):
            keys = keys if keys is not None else [key_of(e) for e in events]  # type: ignore[arg-type]
            send_many = getattr(bus, "send_many", None)  # Kafka: one record batch per partition
            if send_many is not None and len(events) > 1:
                messages = [(serialize_event(e), k) for e, k in zip(events, keys, strict=True)]
                futures = await send_many(Topics.FEEDBACK_RECEIVED, messages)
            else:
                futures = [
                    await bus.send(Topics.FEEDBACK_RECEIVED, serialize_event(e), key=k)
                    for e, k in zip(events, keys, strict=True)
                ]
            results = await asyncio.gather(*futures, return_exceptions=True)
    except Exception as exc:  # not connected, timed out
        return exc
    return next((r for r in results if isinstance(r, BaseException)), None)


def unavailable(settings: IngestSettings, event_ids: list[str]) -> JSONResponse:
    return JSONResponse(
        status_code=503,
        headers={"Retry-After": str(settings.retry_after_s)},
        content={
            "detail": "The event broker is unavailable; nothing was accepted. Retry with the same "
            "event_id after Retry-After seconds.",
            **({"event_id": event_ids[0]} if len(event_ids) == 1 else {"event_ids": event_ids}),
        },
    )


@router.post(
    "/feedback",
    status_code=202,
    response_model=Accepted,
    responses={
        202: {
            "description": "Kafka has durably written the answer.",
            "links": {
                "UpdateFeedback": {
                    "operationId": "patch_feedback_v1_feedback__event_id__patch",
                    "parameters": {"event_id": "$response.body#/event_id"},
                    "description": "A late comment for this answer.",
                }
            },
        },
        200: {"description": "A repeat of a body already accepted: `status` is `duplicate`; nothing was published."},
        401: {"description": "No API key, a malformed header, or a wrong or revoked key."},
        403: {"description": "The key may not post this: wrong role, another tenant, or a store outside its scope."},
        409: {"description": "This event_id (or Idempotency-Key) was used before for a different body."},
        413: {"description": "The body is over the limit (NPSLOOP_MAX_BODY_BYTES, 1 MiB)."},
        415: {"description": "The body is encoded (Content-Encoding); send plain JSON."},
        422: {"description": "The body is invalid: `detail` names each field and the reason."},
        429: {"description": "This key posted too much: wait `Retry-After` seconds. See `RateLimit-*` headers."},
        503: {"description": "The broker did not acknowledge in time; nothing was accepted. Retry."},
    },
    summary="Submit one NPS answer. 202 means Kafka has durably written it.",
)
async def post_feedback(
    body: FeedbackIn, principal: SourceDep, request: Request, idempotency_key: IdempotencyKey = None
) -> Response:
    # Most posts never get here: fast.FeedbackFastPath answers them with accept_one below, and
    # hands FastAPI only what it would not accept (so every error is FastAPI's, as documented).
    return await accept_one(request.app, principal, body, idempotency_key)


async def accept_one(app: Starlette, principal: Principal, body: FeedbackIn, idempotency_key: str | None) -> Response:
    """A validated answer of an authenticated source: rate limit, scope, claim, publish, answer."""
    # Every answer is a Response made here, so FastAPI's sub-response (and its headers) is not used.
    bus, settings = parts_of(app)
    headers, too_many = rate_limit(app, settings, principal, None)
    if too_many is not None:
        return too_many
    try:
        event, item = prepare(body, principal, idempotency_key, settings.source_name)
    except OutOfScope as exc:
        return JSONResponse(status_code=403, content={"detail": str(exc)})
    store = store_of(app)
    (claim,) = await store.claim([item])
    accepted = Accepted.model_construct(
        status="accepted", event_id=event.event_id, correlation_id=event.correlation_id, topic=Topics.FEEDBACK_RECEIVED
    )
    if claim is Claim.CONFLICT:
        return JSONResponse(
            status_code=409,
            content={
                "detail": "This event_id was used before for a different body; nothing was published.",
                "event_id": str(event.event_id),
            },
        )
    if claim is Claim.DUPLICATE:
        return _answer(200, Accepted.model_construct(**{**dict(accepted), "status": "duplicate"}), headers)
    failure = await publish_all(bus, [event], settings.publish_timeout_s, [item.customer_key or key_of(event)])
    if failure is not None:
        await store.release([item])
        log.warning("feedback not accepted: %s", failure, extra={"event_id": str(event.event_id)})
        return unavailable(settings, [str(event.event_id)])
    store.mark_published_later([item])
    return _answer(202, accepted, headers)


def _answer(status: int, body: BaseModel, headers: dict[str, str]) -> Response:
    """The model serialized once, here: FastAPI's response_model pass would validate it again."""
    return Response(body.model_dump_json().encode(), status, headers, media_type="application/json")


class BatchIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": FEEDBACK_EXAMPLES}]})

    # Items are checked one by one (list[Any] here), so that a bad one never rejects the good ones.
    items: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"Up to {MAX_BATCH} answers, each as for POST /v1/feedback.",
        json_schema_extra={"items": {"$ref": "#/components/schemas/FeedbackIn"}},
    )


class ItemResult(BaseModel):
    index: int
    status: str = Field(description="accepted, duplicate, or rejected")
    event_id: uuid.UUID | None = None
    errors: list[dict[str, Any]] | None = Field(default=None, description="For a rejected item: loc, msg, type.")


class BatchResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[ItemResult]


def validated(items: list[Any]) -> list[FeedbackIn | ValidationError]:
    """Each item as FeedbackIn, or the reason it is not one. A batch that is all valid takes one
    validation call (a third cheaper per item than one call each); otherwise item by item."""
    try:
        return list(ITEMS.validate_python(items))
    except ValidationError:
        pass
    out: list[FeedbackIn | ValidationError] = []
    for raw in items:
        try:
            out.append(ITEM.validate_python(raw))
        except ValidationError as exc:
            out.append(exc)
    return out


@router.post(
    "/feedback:batch",
    response_model=BatchResult,
    responses={
        401: {"description": "No API key, a malformed header, or a wrong or revoked key."},
        403: {"description": "The key may not post feedback."},
        413: {"description": "The body is over the limit (NPSLOOP_MAX_BATCH_BODY_BYTES, 5 MiB)."},
        422: {"description": 'The body is not `{"items": [...]}` with 1 to 1,000 items.'},
        429: {"description": "This key posted too much: wait `Retry-After` seconds."},
        503: {"description": "The broker did not acknowledge every item; nothing of this batch counts. Retry it."},
    },
    summary="Submit up to 1,000 answers. One result per item, in order; 200 only after Kafka acknowledged "
    "every accepted item.",
)
async def post_batch(batch: BatchIn, principal: SourceDep, request: Request) -> Response:
    bus, settings = parts_of(request.app)
    headers, too_many = rate_limit(request.app, settings, principal, None, cost=len(batch.items))
    if too_many is not None:
        return too_many
    # Each result is a dict shaped as ItemResult (the documented response_model), and the whole
    # answer is written by pydantic_core.to_json: the same bytes as through the models, at a sixth of
    # the CPU (a model per item was ~2 us of a batch item's ~45).
    results: list[dict[str, Any]] = []
    prepared: list[tuple[int, FeedbackReceivedV1, Item]] = []
    now = utcnow()  # one batch, one recorded_at
    for index, body in enumerate(validated(batch.items)):
        try:
            if isinstance(body, ValidationError):
                raise body
            event, item = prepare(body, principal, None, settings.source_name, now)
        except ValidationError as exc:
            errors = [{**e, "loc": ["items", index, *e["loc"]]} for e in clean_errors(exc.errors())]
            results.append(_result(index, "rejected", None, errors))
            continue
        except OutOfScope as exc:
            results.append(
                _result(index, "rejected", None, [{"loc": ["items", index], "msg": str(exc), "type": "forbidden"}])
            )
            continue
        results.append(_result(index, "accepted", event.event_id))
        prepared.append((index, event, item))
    store = store_of(request.app)
    claims = await store.claim([item for _, _, item in prepared])
    to_publish = []
    for (index, event, item), claim in zip(prepared, claims, strict=True):
        if claim is Claim.CONFLICT:
            msg = "This event_id was used before for a different body."
            errors = [{"loc": ["items", index, "event_id"], "msg": msg, "type": "conflict"}]
            results[index] = _result(index, "rejected", event.event_id, errors)
        elif claim is Claim.DUPLICATE:
            results[index] = _result(index, "duplicate", event.event_id)
        else:
            to_publish.append((event, item))
    failure = await publish_all(
        bus,
        [e for e, _ in to_publish],
        settings.publish_timeout_s,
        [i.customer_key or key_of(e) for e, i in to_publish],
    )
    if failure is not None:
        await store.release([i for _, i in to_publish])
        log.warning("batch of %d not accepted: %s", len(to_publish), failure)
        return unavailable(settings, [str(e.event_id) for e, _ in to_publish])
    store.mark_published_later([i for _, i in to_publish])
    count = Counter(r["status"] for r in results)
    answer = {
        "accepted": count["accepted"],
        "duplicates": count["duplicate"],
        "rejected": count["rejected"],
        "results": results,
    }
    return Response(to_json(answer), 200, headers, media_type="application/json")


def _result(
    index: int, status: str, event_id: uuid.UUID | None, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """One item's ItemResult, as the dict it serializes to (keys in the model's order)."""
    return {"index": index, "status": status, "event_id": event_id, "errors": errors}
