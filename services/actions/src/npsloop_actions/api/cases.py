"""Read API: cases and NPS of the key's tenant and stores, with the 95% margin of error.

Scope is applied in the SQL query. Another tenant or a store outside the key's scope finds
nothing: 404, never 403, so that existence does not leak.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException, Query

from npsloop_platform.access.http import ReaderDep, same_tenant_or_404
from npsloop_platform.app import DbDep
from npsloop_schemas import nps_summary

from ..repository import band_counts, list_cases

router = APIRouter(prefix="/v1", tags=["cases"])
TENANT = Query(
    None,
    min_length=1,
    max_length=64,
    pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
    description="Optional: your key's tenant.",
)
STORE = Query(None, min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$", description="One store only.")


@router.get("/cases", summary="The newest cases of your tenant (and stores).")
async def get_cases(
    db: DbDep, principal: ReaderDep, tenant_id: str | None = TENANT, limit: int = Query(100, ge=1, le=1000)
) -> dict[str, Any]:
    tenant = same_tenant_or_404(principal, tenant_id)
    async with db.session() as session:
        return {"cases": await list_cases(session, tenant, principal.stores, limit)}


@router.get("/nps", summary="NPS with its 95% margin of error; small samples are flagged.")
async def get_nps(
    db: DbDep, principal: ReaderDep, tenant_id: str | None = TENANT, store_id: str | None = STORE
) -> dict[str, Any]:
    tenant = same_tenant_or_404(principal, tenant_id)
    if store_id is not None and not principal.may_see_store(store_id):
        raise HTTPException(404, "Not found.")
    async with db.session() as session:
        counts = await band_counts(session, tenant, store_id, principal.stores)
    summary = nps_summary(counts.get("promoter", 0), counts.get("passive", 0), counts.get("detractor", 0))
    return {"tenant_id": tenant, "store_id": store_id, **asdict(summary)}
