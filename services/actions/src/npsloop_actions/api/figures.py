"""Closed-loop figures for the reporting work, computed in SQL over the key's tenant and stores."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query

from npsloop_platform.access.http import ReaderDep
from npsloop_platform.app import DbDep

from ..queries import closed_loop, week_bounds
from .deps import STORE, TENANT, CtxDep, scope_of

router = APIRouter(prefix="/v1", tags=["figures"])


@router.get(
    "/closed-loop",
    summary="Time to first contact and to resolve, detractors contacted within SLA, recovery, passives asked.",
)
async def get_closed_loop(
    db: DbDep,
    principal: ReaderDep,
    ctx: CtxDep,
    tenant_id: str | None = TENANT,
    store_id: str | None = STORE,
    week: str | None = Query(None, pattern=r"^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$", description="ISO week, e.g. 2026-W48."),
) -> dict[str, Any]:
    scope = scope_of(principal, tenant_id, store_id)
    if week is not None:
        try:
            week_bounds(week)
        except ValueError:
            raise HTTPException(422, f"{week} is not a week of that year") from None
    async with db.session() as session:
        return await closed_loop(session, scope, store_id, week, ctx.clock())
