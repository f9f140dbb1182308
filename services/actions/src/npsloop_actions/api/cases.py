"""Read API: cases and NPS per tenant/store, with the 95% margin of error."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Query

from npsloop_platform.app import DbDep
from npsloop_schemas import nps_summary

from ..repository import band_counts, list_cases

router = APIRouter(prefix="/v1", tags=["cases"])
TENANT = Query(min_length=1, max_length=64, description="Tenant id")


@router.get("/cases", summary="The newest cases of a tenant.")
async def get_cases(db: DbDep, tenant_id: str = TENANT, limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    async with db.session() as session:
        return {"cases": await list_cases(session, tenant_id, limit)}


@router.get("/nps", summary="NPS with its 95% margin of error; small samples are flagged.")
async def get_nps(db: DbDep, tenant_id: str = TENANT, store_id: str | None = None) -> dict[str, Any]:
    async with db.session() as session:
        counts = await band_counts(session, tenant_id, store_id)
    summary = nps_summary(counts.get("promoter", 0), counts.get("passive", 0), counts.get("detractor", 0))
    return {"tenant_id": tenant_id, "store_id": store_id, **asdict(summary)}
