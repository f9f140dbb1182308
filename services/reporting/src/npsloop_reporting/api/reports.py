"""GET /v1/reports/nps and /v1/reports/kpis: figures of the key's tenant and stores.

Scope is applied in the SQL query. A store or region outside the key's scope, another tenant, or
a store nobody ever reported on is 404; a period with no answers is an empty state (`n: 0`,
`nps: null`, `too_few_answers: true`), never a divide by zero.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request

from npsloop_platform.access.http import ReaderDep, same_tenant_or_404
from npsloop_platform.access.keys import Principal
from npsloop_platform.app import DbDep, state_of
from npsloop_platform.db import custom_plan_session
from npsloop_platform.text import ID_PATTERN

from ..config import ReportingSettings
from ..figures import DIMENSIONS, TEST, Scope, known_region, known_store, nps_breakdown, nps_series
from ..kpis import weekly_kpis
from ..periods import Period, PeriodError, PeriodKind, parse_period

router = APIRouter(prefix="/v1/reports", tags=["reports"])
_ID = ID_PATTERN
TenantQ = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
StoreQ = Annotated[str | None, Query(min_length=1, max_length=128, pattern=_ID, description="One store.")]
RegionQ = Annotated[str | None, Query(min_length=1, max_length=128, pattern=_ID, description="A region's stores.")]
ChannelQ = Annotated[str | None, Query(min_length=1, max_length=32, pattern=_ID, description="pos, web, app, ...")]
ThemeQ = Annotated[str | None, Query(min_length=1, max_length=128, pattern=_ID, description="Answers naming it.")]
DateQ = Annotated[
    str | None,
    Query(max_length=32, description="A day in the period (2026-11-23), or 2026-W47, 2026-11, 2026-Q4, 2026."),
]


def reporting_settings(request: Request) -> ReportingSettings:
    settings = state_of(request).extras.get("reporting_settings")
    assert isinstance(settings, ReportingSettings)
    return settings


def clock_of(request: Request) -> datetime:
    clock = state_of(request).extras.get("reporting_clock")
    return clock() if clock else datetime.now(UTC)


def period_or_422(kind: str, when: str | None, today: datetime) -> Period:
    try:
        return parse_period(kind, when, today.date())
    except PeriodError as exc:
        raise HTTPException(422, str(exc)) from None


async def scope_or_404(
    db: Any, principal: Principal, tenant_id: str | None, store_id: str | None, region: str | None, **filters: Any
) -> Scope:
    """The request's scope; a store or region the key may not see, or nobody knows, is a 404."""
    tenant = same_tenant_or_404(principal, tenant_id)
    if store_id is not None and not principal.may_see_store(store_id):
        raise HTTPException(404, "Not found.")
    async with custom_plan_session(db) as session:
        if store_id is not None and not await known_store(session, tenant, store_id):
            raise HTTPException(404, f"Unknown store {store_id!r}: no answers or cases were ever reported for it.")
        if region is not None and not await known_region(session, tenant, region):
            raise HTTPException(404, f"Unknown region {region!r}: no answers of its stores were ever reported.")
    return Scope(tenant, principal.stores, store_id, region, **filters)


@router.get("/nps", summary="NPS with its 95% margin of error, the change against the previous period, and a trend.")
async def get_nps(
    request: Request,
    db: DbDep,
    principal: ReaderDep,
    tenant_id: TenantQ = None,
    store_id: StoreQ = None,
    region: RegionQ = None,
    channel: ChannelQ = None,
    theme: ThemeQ = None,
    period: Annotated[str, Query(max_length=16, description="day, week, month, quarter or year")] = "week",
    date: DateQ = None,
    trend: Annotated[int, Query(ge=1, le=60, description="How many periods the trend holds (oldest first).")] = 13,
    group_by: Annotated[Literal["store", "region", "channel", "theme"] | None, Query()] = None,
) -> dict[str, Any]:
    settings = reporting_settings(request)
    p = period_or_422(period, date, clock_of(request))
    scope = await scope_or_404(db, principal, tenant_id, store_id, region, channel=channel, theme=theme)
    async with custom_plan_session(db) as session:
        series = await nps_series(session, scope, p, trend, settings.min_answers)
        groups = await nps_breakdown(session, scope, p, group_by, settings.min_answers) if group_by else None
    current = series[-1]
    out: dict[str, Any] = {
        "tenant_id": scope.tenant_id,
        "store_id": store_id,
        "region": region,
        "channel": channel,
        "theme": theme,
        **current.as_json(),
        "min_answers": settings.min_answers,
        "test": TEST,
        "empty": current.n == 0,
        "message": "No answers in this period."
        if current.n == 0
        else (
            f"Too few answers (n < {settings.min_answers}) for a margin of error." if current.too_few_answers else None
        ),
        "trend": [pt.as_json() for pt in series],
    }
    if groups is not None:
        out["groups"] = groups
    return out


@router.get("/kpis", summary="Closed-loop KPIs per store and week.")
async def get_kpis(
    request: Request,
    db: DbDep,
    principal: ReaderDep,
    tenant_id: TenantQ = None,
    store_id: StoreQ = None,
    region: RegionQ = None,
    date: DateQ = None,
    weeks: Annotated[int, Query(ge=1, le=104, description="How many weeks, ending with the one of `date`.")] = 1,
) -> dict[str, Any]:
    now = clock_of(request)
    last = period_or_422(str(PeriodKind.WEEK), date, now)
    scope = await scope_or_404(db, principal, tenant_id, store_id, region)
    async with custom_plan_session(db) as session:
        rows = await weekly_kpis(session, scope, last.shift(1 - weeks), last, now)
    return {"tenant_id": scope.tenant_id, "weeks": [last.shift(1 - weeks).label, last.label], "kpis": rows}


__all__ = ["DIMENSIONS", "router"]
