"""The delivery log (every attempt of every email, call task and webhook), replay of one failed
webhook delivery, and the suppression list (admin keys)."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from npsloop_platform.access.http import AdminDep, same_tenant_or_404
from npsloop_platform.text import CleanText

from .deps import TENANT, ApiDep

router = APIRouter(prefix="/v1", tags=["deliveries"])


@router.get("/deliveries", summary="The delivery log, newest first: emails, call tasks and webhooks.")
async def list_deliveries(
    admin: AdminDep,
    api: ApiDep,
    tenant_id: str | None = TENANT,
    kind: str | None = Query(None, max_length=32, pattern=r"^[a-z_]+$"),
    status: str | None = Query(None, pattern="^(pending|retrying|sent|failed|skipped|suppressed)$"),
    since: AwareDatetime | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    tenant = same_tenant_or_404(admin, tenant_id)
    return {"deliveries": await api.log.deliveries(tenant, kind=kind, status=status, since=since, limit=limit)}


@router.get("/deliveries/{delivery_id}", summary="One delivery with every attempt.")
async def get_delivery(delivery_id: uuid.UUID, admin: AdminDep, api: ApiDep) -> dict[str, Any]:
    found = await api.log.get(admin.tenant_id, delivery_id)
    if found is None:
        raise HTTPException(404, "Not found.")
    return found


@router.post(
    "/deliveries/{delivery_id}/replay",
    summary="Send one failed webhook delivery again (same webhook-id).",
    responses={409: {"description": "Only a failed webhook delivery can be replayed."}},
)
async def replay_delivery(delivery_id: uuid.UUID, admin: AdminDep, api: ApiDep) -> dict[str, Any]:
    claimed = await api.subscriptions.claim_replay(admin.tenant_id, delivery_id=delivery_id)
    if not claimed:
        found = await api.log.get(admin.tenant_id, delivery_id)
        if found is None:
            raise HTTPException(404, "Not found.")
        raise HTTPException(409, f"Only a failed webhook delivery can be replayed; this one is {found['status']}.")
    (result,) = await api.dispatcher.replay(claimed)
    found = await api.log.get(admin.tenant_id, delivery_id)
    assert found is not None
    return found | {"replayed": True, "replay_status": result.status}


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["email", "phone", "customer"]
    value: Annotated[str, CleanText] = Field(
        min_length=1, max_length=320, description="The address, phone number or customer key.",
        examples=["ann@example.com"],
    )  # fmt: skip
    reason: Annotated[str, CleanText] = Field(default="admin", min_length=1, max_length=64)

    @model_validator(mode="after")
    def _shape(self) -> SuppressionIn:
        if self.kind == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+", self.value.strip()):
            raise ValueError("not an email address")
        if self.kind == "phone" and not re.fullmatch(r"\+?[0-9 ()./-]{5,32}", self.value.strip()):
            raise ValueError("not a phone number")
        return self


@router.get("/suppressions", summary="Who is never contacted (opt-outs and your entries), masked.")
async def list_suppressions(admin: AdminDep, api: ApiDep, tenant_id: str | None = TENANT) -> dict[str, Any]:
    tenant = same_tenant_or_404(admin, tenant_id)
    return {"suppressions": await api.suppressions.entries(tenant)}


@router.post("/suppressions", status_code=201, summary="Never contact this address, phone or customer again.")
async def add_suppression(body: SuppressionIn, admin: AdminDep, api: ApiDep) -> dict[str, Any]:
    return await api.suppressions.add(admin.tenant_id, body.kind, body.value, body.reason, admin.actor)


@router.delete("/suppressions/{suppression_id}", status_code=204, summary="Allow contact again.")
async def remove_suppression(
    admin: AdminDep, api: ApiDep, suppression_id: str = Path(pattern="^[0-9a-f]{64}$")
) -> None:
    if not await api.suppressions.remove(admin.tenant_id, suppression_id):
        raise HTTPException(404, "Not found.")
