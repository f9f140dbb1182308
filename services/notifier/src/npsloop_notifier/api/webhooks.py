"""Webhook subscriptions (admin keys): create (the secret is shown once), list, delete, rotate the
secret with an overlap, re-enable, and replay failed deliveries."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from npsloop_platform.access.http import AdminDep, same_tenant_or_404
from npsloop_platform.text import CleanText

from ..consumer import CASE_EVENT_TYPES
from ..webhooks import UrlRefused, check_url
from .deps import TENANT, ApiDep

router = APIRouter(prefix="/v1", tags=["webhooks"])
EVENT_TYPE_NAMES = sorted({cls.model_fields["event_type"].default for cls in CASE_EVENT_TYPES})


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, CleanText] = Field(
        max_length=2000,
        pattern=r"^\S+$",
        description="https:// in prod mode; http://127.0.0.1 is fine in dev mode.",
        examples=["https://crm.example.com/hooks/npsloop"],
    )
    event_types: list[str] = Field(
        min_length=1,
        max_length=50,
        description=f"Any of {', '.join(EVENT_TYPE_NAMES)}, or '*' for all.",
        examples=[["case.opened", "case.closed"]],
    )
    description: Annotated[str, CleanText] | None = Field(default=None, max_length=256)

    @field_validator("event_types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - {*EVENT_TYPE_NAMES, "*"})
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {EVENT_TYPE_NAMES} or '*'")
        return sorted(set(value))


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_s: int | None = Field(
        default=None,
        ge=0,
        le=30 * 86_400,
        description="How long the old secret still signs (default: 24 h).",
        examples=[3600],
    )


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime = Field(
        description="Replay the failed deliveries created at or after this time.", examples=["2026-11-30T00:00:00Z"]
    )


@router.post(
    "/webhook-subscriptions",
    status_code=201,
    summary="Subscribe a URL to case events. The answer carries the signing secret once (whsec_...).",
)
async def create_subscription(body: SubscriptionIn, admin: AdminDep, api: ApiDep) -> dict[str, Any]:
    try:
        url = await check_url(body.url, api.settings.mode)
    except UrlRefused as exc:
        raise HTTPException(422, f"url refused: {exc}") from None
    secret, described = await api.subscriptions.create(
        admin.tenant_id, url, body.event_types, body.description, admin.actor
    )
    return described | {"secret": secret, "note": "Store the secret now: it is never shown again."}


@router.get("/webhook-subscriptions", summary="Your tenant's subscriptions, with their status (never secrets).")
async def list_subscriptions(admin: AdminDep, api: ApiDep, tenant_id: str | None = TENANT) -> dict[str, Any]:
    tenant = same_tenant_or_404(admin, tenant_id)
    return {"subscriptions": await api.subscriptions.list_subscriptions(tenant)}


@router.get("/webhook-subscriptions/{subscription_id}", summary="One subscription: status, failures, disabled why.")
async def get_subscription(subscription_id: uuid.UUID, admin: AdminDep, api: ApiDep) -> dict[str, Any]:
    found = await api.subscriptions.get(admin.tenant_id, subscription_id)
    if found is None:
        raise HTTPException(404, "Not found.")
    return found


@router.delete("/webhook-subscriptions/{subscription_id}", status_code=204, summary="Stop sending to this URL.")
async def delete_subscription(subscription_id: uuid.UUID, admin: AdminDep, api: ApiDep) -> None:
    if not await api.subscriptions.delete(admin.tenant_id, subscription_id):
        raise HTTPException(404, "Not found.")


@router.post(
    "/webhook-subscriptions/{subscription_id}/rotate-secret",
    summary="A new secret, shown once; the old one keeps signing too (both signatures are sent) for overlap_s.",
)
async def rotate_secret(
    subscription_id: uuid.UUID, admin: AdminDep, api: ApiDep, body: RotateIn | None = None
) -> dict[str, Any]:
    overlap_s = body.overlap_s if body and body.overlap_s is not None else api.settings.webhook_rotation_overlap_s
    now = api.clock()
    secret = await api.subscriptions.rotate(admin.tenant_id, subscription_id, timedelta(seconds=overlap_s), now)
    if secret is None:
        raise HTTPException(404, "Not found.")
    until = (now + timedelta(seconds=overlap_s)).isoformat()
    return {"id": str(subscription_id), "secret": secret, "previous_secret_valid_until": until}


@router.post("/webhook-subscriptions/{subscription_id}/enable", summary="Re-enable a disabled subscription.")
async def enable_subscription(subscription_id: uuid.UUID, admin: AdminDep, api: ApiDep) -> dict[str, Any]:
    if not await api.subscriptions.enable(admin.tenant_id, subscription_id):
        raise HTTPException(404, "Not found.")
    found = await api.subscriptions.get(admin.tenant_id, subscription_id)
    assert found is not None
    return found


@router.get("/webhook-subscriptions/{subscription_id}/deliveries", summary="The deliveries of one subscription.")
async def subscription_deliveries(
    subscription_id: uuid.UUID,
    admin: AdminDep,
    api: ApiDep,
    status: str | None = Query(None, pattern="^(pending|retrying|sent|failed)$"),
    since: AwareDatetime | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    if await api.subscriptions.get(admin.tenant_id, subscription_id) is None:
        raise HTTPException(404, "Not found.")
    rows = await api.log.deliveries(
        admin.tenant_id, kind="webhook", status=status, subscription_id=subscription_id, since=since, limit=limit
    )
    return {"deliveries": rows}


@router.post(
    "/webhook-subscriptions/{subscription_id}/replay",
    summary="Send every failed delivery of this subscription since a time again (same webhook-id).",
)
async def replay_subscription(
    subscription_id: uuid.UUID, body: ReplayIn, admin: AdminDep, api: ApiDep
) -> dict[str, Any]:
    if await api.subscriptions.get(admin.tenant_id, subscription_id) is None:
        raise HTTPException(404, "Not found.")
    claimed = await api.subscriptions.claim_replay(admin.tenant_id, sub_id=subscription_id, since=body.since)
    results = await api.dispatcher.replay(claimed)
    return {
        "replayed": len(results),
        "sent": sum(r.status == "sent" for r in results),
        "failed": sum(r.status == "failed" for r in results),
        "deliveries": [r.__dict__ for r in results],
    }
