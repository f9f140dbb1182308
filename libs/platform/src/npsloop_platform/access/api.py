"""The admin HTTP API for keys: an admin key manages the keys of its own tenant."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..text import CleanText
from .http import AdminDep, keys_of
from .keys import Role

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class KeyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"role": "source", "stores": ["berlin-1"], "name": "Till 3, Berlin Mitte"},
                {"role": "manager", "name": "Regional manager north"},
            ]
        },
    )

    role: Role
    stores: list[Annotated[str, StringConstraints(min_length=1, max_length=128), CleanText]] | None = Field(
        default=None, description="Limit the key to these stores; omitted: all."
    )
    name: Annotated[str, CleanText] | None = Field(
        default=None, max_length=128, description="What the key is for (a till, a person)."
    )


@router.post("/keys", status_code=201, summary="Create a key for your tenant. The key is shown once, here.")
async def create_key(body: KeyIn, admin: AdminDep, request: Request) -> dict[str, Any]:
    key, described = await keys_of(request).create(admin.tenant_id, body.role, body.stores, admin.actor, body.name)
    return {"key": key, **described, "note": "Store the key now: it is never shown again."}


@router.get("/keys", summary="The keys of your tenant (prefixes, never secrets).")
async def list_keys(admin: AdminDep, request: Request) -> dict[str, Any]:
    return {"keys": await keys_of(request).list_keys(admin.tenant_id)}


@router.delete("/keys/{prefix}", status_code=204, summary="Revoke a key; every replica refuses it within seconds.")
async def revoke_key(prefix: str, admin: AdminDep, request: Request) -> None:
    if not await keys_of(request).revoke(prefix, admin.actor, tenant_id=admin.tenant_id):
        raise HTTPException(404, "Not found.")


@router.get("/audit", summary="Who changed which key, and when.")
async def audit(admin: AdminDep, request: Request) -> dict[str, Any]:
    return {"entries": await keys_of(request).audit(admin.tenant_id)}
