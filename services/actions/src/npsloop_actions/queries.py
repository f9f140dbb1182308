"""The SQL behind the HTTP API: reads and the case changes people make, scoped IN the query.

Every statement filters by the caller's tenant and, for a store-scoped key, by its stores; a row
outside the scope is never read, so the API answers 404 without knowing whether it exists.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop_schemas import CaseStatus

from .cases import Applied, CaseNow, InvalidTransition, Request, apply_change
from .models import CaseRow, CaseTimelineRow, CustomerRow, FeedbackRow, VisitRow
from .policy import Policy
from .repository import SqlActionsRepository


class Conflict(Exception):
    """The change is not possible now (the API answers 409)."""


@dataclass(frozen=True)
class Scope:
    tenant_id: str
    stores: frozenset[str] | None

    def cases(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = [CaseRow.tenant_id == self.tenant_id]
        if self.stores is not None:
            out.append(CaseRow.store_id.in_(sorted(self.stores)))
        return out

    def feedback(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = [FeedbackRow.tenant_id == self.tenant_id]
        if self.stores is not None:
            out.append(FeedbackRow.store_id.in_(sorted(self.stores)))
        return out


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def case_view(r: CaseRow, now: datetime) -> dict[str, Any]:
    overdue = bool(r.status == "open" and r.first_contacted_at is None and r.sla_due_at and r.sla_due_at <= now)
    return {
        "case_id": str(r.case_id),
        "feedback_event_id": str(r.feedback_event_id),
        "customer_key": r.customer_key,
        "segment": r.segment,
        "kind": r.kind,
        "status": r.status,
        "priority": r.priority,
        "reason": r.reason,
        "store_id": r.store_id,
        "assignee": r.assignee,
        "themes": r.themes,
        "flags": r.flags,
        "opened_at": r.opened_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
        "sla_due_at": _iso(r.sla_due_at),
        "overdue": overdue,
        "escalation_level": r.escalation_level,
        "first_contacted_at": _iso(r.first_contacted_at),
        "resolved_at": _iso(r.resolved_at),
        "closed_at": _iso(r.closed_at),
        "root_cause": r.root_cause,
        "outcome": r.outcome,
    }


@dataclass(frozen=True)
class CaseFilter:
    store_id: str | None = None
    status: str | None = None
    segment: str | None = None
    kind: str | None = None
    min_priority: int | None = None
    assignee: str | None = None
    overdue: bool | None = None
    sort: str = "newest"


async def list_cases(
    session: AsyncSession, scope: Scope, f: CaseFilter, now: datetime, limit: int = 100, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    where = scope.cases()
    for column, value in (
        (CaseRow.store_id, f.store_id),
        (CaseRow.status, f.status),
        (CaseRow.segment, f.segment),
        (CaseRow.kind, f.kind),
        (CaseRow.assignee, f.assignee),
    ):
        if value is not None:
            where.append(column == value)
    if f.min_priority is not None:
        where.append(CaseRow.priority >= f.min_priority)
    if f.overdue is not None:
        late = and_(CaseRow.status == "open", CaseRow.first_contacted_at.is_(None), CaseRow.sla_due_at <= now)
        where.append(late if f.overdue else or_(~late, CaseRow.sla_due_at.is_(None)))
    stmt: Select[Any] = select(CaseRow).where(*where)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    order = {
        "newest": (CaseRow.opened_at.desc(),),
        "priority": (CaseRow.priority.desc(), CaseRow.opened_at),
        "due": (CaseRow.sla_due_at.asc().nulls_last(), CaseRow.priority.desc()),
    }[f.sort]
    rows = await session.execute(stmt.order_by(*order, CaseRow.case_id).limit(limit).offset(offset))
    return [case_view(r, now) for r in rows.scalars()], int(total)


async def get_case(session: AsyncSession, scope: Scope, case_id: uuid.UUID, now: datetime) -> dict[str, Any] | None:
    row = (await session.execute(select(CaseRow).where(CaseRow.case_id == case_id, *scope.cases()))).scalar()
    if row is None:
        return None
    timeline = await session.execute(
        select(CaseTimelineRow).where(CaseTimelineRow.case_id == case_id).order_by(CaseTimelineRow.id)
    )
    feedback = await session.execute(
        select(FeedbackRow).where(FeedbackRow.case_id == case_id).order_by(FeedbackRow.occurred_at)
    )
    return case_view(row, now) | {
        "timeline": [
            {"at": t.at.isoformat(), "entry": t.entry, "detail": t.detail, "actor": t.actor} for t in timeline.scalars()
        ],
        "feedback": [
            {
                "feedback_event_id": str(fb.feedback_event_id),
                "score": fb.score,
                "band": fb.band,
                "comment": fb.comment,
                "themes": fb.themes,
                "occurred_at": fb.occurred_at.isoformat(),
            }
            for fb in feedback.scalars()
        ],
    }


async def change_case(
    session: AsyncSession, scope: Scope, case_id: uuid.UUID, req: Request, policy: Policy, now: datetime, source: str
) -> Applied | None:
    """One change in the caller's transaction: lock the case (in scope), check, update, timeline, outbox."""
    row = (
        await session.execute(select(CaseRow).where(CaseRow.case_id == case_id, *scope.cases()).with_for_update())
    ).scalar()
    if row is None:
        return None
    case = CaseNow(
        row.case_id,
        row.tenant_id,
        CaseStatus(row.status),
        row.store_id,
        row.customer_key,
        row.feedback_event_id,
        row.priority,
        row.first_contacted_at,
        row.root_cause,
        row.outcome,
    )
    applied = apply_change(case, req, policy, now, source)
    try:
        async with session.begin_nested():
            await session.execute(update(CaseRow).where(CaseRow.case_id == case_id).values(**applied.values))
    except IntegrityError:
        raise Conflict("this customer has another open case; work that one, or resolve it first") from None
    repo = SqlActionsRepository(session)
    repo.add_timeline(case_id, applied.entry, applied.detail, actor=req.actor)
    for event in applied.events:
        repo.add_outbox(event, row.customer_key)
    await repo.flush()
    return applied


# -- customers ---------------------------------------------------------------------------------
def customer_key_of(tenant_id: str, customer_id: str) -> str:
    return f"{tenant_id}:{customer_id}"


async def get_customer(session: AsyncSession, scope: Scope, customer_id: str, now: datetime) -> dict[str, Any] | None:
    key = customer_key_of(scope.tenant_id, customer_id)
    c = (
        await session.execute(
            select(CustomerRow).where(CustomerRow.customer_key == key, CustomerRow.tenant_id == scope.tenant_id)
        )
    ).scalar()
    history = list(
        (
            await session.execute(
                select(FeedbackRow)
                .where(FeedbackRow.customer_key == key, *scope.feedback())
                .order_by(FeedbackRow.occurred_at, FeedbackRow.stored_at)
                .limit(500)
            )
        ).scalars()
    )
    if c is None or not history:  # a store-scoped key sees customers of its stores only
        return None
    case = (
        await session.execute(
            select(CaseRow).where(
                CaseRow.customer_key == key, CaseRow.status.in_(["open", "contacted"]), *scope.cases()
            )
        )
    ).scalar()
    todo = []
    if c.surprise_pending:
        todo.append({"action": "surprise_and_delight", "reason": c.surprise_reason})
    if c.at_risk:
        todo.append({"action": "greet_and_ask", "reason": "at risk: their last answer was lower than the one before"})
    if case is not None:
        todo.append({"action": "mention_follow_up", "reason": f"an open {case.kind} case ({case.status})"})
    return {
        "customer_id": customer_id,
        "current_band": c.current_band,
        "previous_band": c.previous_band,
        "last_score": c.last_score,
        "answers": c.answers,
        "markers": {
            "at_risk": c.at_risk,
            "at_risk_since": _iso(c.at_risk_since),
            "recovered": c.recovered,
            "recovered_at": _iso(c.recovered_at),
            "former_detractor": c.was_detractor,
            "surprise_and_delight": c.surprise_pending,
        },
        "next_visit": {"surprise_and_delight": c.surprise_pending, "actions": todo},
        "open_case": case_view(case, now) if case is not None else None,
        "history": [
            {
                "feedback_event_id": str(fb.feedback_event_id),
                "occurred_at": fb.occurred_at.isoformat(),
                "score": fb.score,
                "band": fb.band,
                "store_id": fb.store_id,
                "channel": fb.channel,
                "themes": fb.themes,
                "case_id": str(fb.case_id) if fb.case_id else None,
            }
            for fb in history
        ],
    }


async def record_visit(
    session: AsyncSession, scope: Scope, customer_id: str, visit_id: str, store_id: str | None
) -> dict[str, Any] | None:
    """Acknowledge a visit: clears the surprise-and-delight flag, exactly once (per visit id, too)."""
    key = customer_key_of(scope.tenant_id, customer_id)
    seen = await session.execute(
        select(FeedbackRow.feedback_event_id).where(FeedbackRow.customer_key == key, *scope.feedback()).limit(1)
    )
    if seen.scalar() is None:
        return None
    claimed = await session.execute(
        pg_insert(VisitRow)
        .values(
            tenant_id=scope.tenant_id, visit_id=visit_id, customer_key=key, store_id=store_id, cleared_surprise=False
        )
        .on_conflict_do_nothing()
        .returning(VisitRow.visit_id)
    )
    if claimed.scalar() is None:
        prior = (
            await session.execute(
                select(VisitRow).where(VisitRow.tenant_id == scope.tenant_id, VisitRow.visit_id == visit_id)
            )
        ).scalar_one()
        if prior.customer_key != key:
            raise Conflict("this visit_id was used for another customer")
        return {"visit_id": visit_id, "status": "duplicate", "cleared_surprise": prior.cleared_surprise}
    cleared = await session.execute(
        update(CustomerRow)
        .where(CustomerRow.customer_key == key, CustomerRow.tenant_id == scope.tenant_id, CustomerRow.surprise_pending)
        .values(surprise_pending=False)
        .returning(CustomerRow.surprise_reason)
    )
    was_set = cleared.first() is not None
    if was_set:
        await session.execute(
            update(VisitRow)
            .where(VisitRow.tenant_id == scope.tenant_id, VisitRow.visit_id == visit_id)
            .values(cleared_surprise=True)
        )
    return {"visit_id": visit_id, "status": "recorded", "cleared_surprise": was_set}


# -- closed-loop figures -----------------------------------------------------------------------
def week_bounds(week: str) -> tuple[datetime, datetime]:
    """`2026-W48` -> [Monday 00:00 UTC, next Monday)."""
    year, _, num = week.partition("-W")
    start = date.fromisocalendar(int(year), int(num), 1)
    lo = datetime(start.year, start.month, start.day, tzinfo=UTC)
    return lo, lo + timedelta(days=7)


CLOSED_LOOP_SQL = """
WITH c AS (
    SELECT c.*, cu.recovered_at
    FROM actions.cases c LEFT JOIN actions.customers cu ON cu.customer_key = c.customer_key
    WHERE c.tenant_id = :tenant {case_where}
)
SELECT
    count(*) AS cases,
    count(*) FILTER (WHERE segment = 'detractor') AS detractor_cases,
    count(*) FILTER (WHERE first_contacted_at IS NOT NULL) AS contacted,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_contacted_at - opened_at))
        FILTER (WHERE first_contacted_at IS NOT NULL) / 3600 AS median_hours_to_first_contact,
    avg(extract(epoch FROM first_contacted_at - opened_at)) / 3600 AS mean_hours_to_first_contact,
    count(*) FILTER (WHERE coalesce(resolved_at, closed_at) IS NOT NULL) AS resolved,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM coalesce(resolved_at, closed_at) - opened_at))
        FILTER (WHERE coalesce(resolved_at, closed_at) IS NOT NULL) / 3600 AS median_hours_to_resolve,
    avg(extract(epoch FROM coalesce(resolved_at, closed_at) - opened_at)) / 3600 AS mean_hours_to_resolve,
    count(*) FILTER (WHERE segment = 'detractor' AND first_contacted_at IS NOT NULL
                     AND first_contacted_at <= sla_due_at) AS detractors_contacted_within_sla,
    count(*) FILTER (WHERE segment = 'detractor' AND (first_contacted_at IS NOT NULL OR sla_due_at <= :now))
        AS detractors_due,
    count(*) FILTER (WHERE segment = 'detractor' AND recovered_at >= opened_at) AS detractors_recovered
FROM c
"""
PASSIVES_SQL = """
SELECT count(*) AS passives, count(*) FILTER (WHERE requested @> '["nurture_email"]'::jsonb) AS passives_asked
FROM actions.feedback WHERE tenant_id = :tenant AND band = 'passive' {fb_where}
"""


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _hours(value: Any) -> float | None:
    return round(float(value), 2) if value is not None else None


async def closed_loop(
    session: AsyncSession, scope: Scope, store_id: str | None, week: str | None, now: datetime
) -> dict[str, Any]:
    params: dict[str, Any] = {"tenant": scope.tenant_id, "now": now}
    case_where, fb_where = "", ""
    if scope.stores is not None:
        params["stores"] = sorted(scope.stores)
        case_where += " AND c.store_id = ANY(:stores)"
        fb_where += " AND store_id = ANY(:stores)"
    if store_id is not None:
        params["store"] = store_id
        case_where += " AND c.store_id = :store"
        fb_where += " AND store_id = :store"
    if week is not None:
        params["lo"], params["hi"] = week_bounds(week)
        case_where += " AND c.opened_at >= :lo AND c.opened_at < :hi"
        fb_where += " AND occurred_at >= :lo AND occurred_at < :hi"
    r = (await session.execute(text(CLOSED_LOOP_SQL.format(case_where=case_where)), params)).one()
    p = (await session.execute(text(PASSIVES_SQL.format(fb_where=fb_where)), params)).one()
    return {
        "tenant_id": scope.tenant_id,
        "store_id": store_id,
        "week": week,
        "cases": r.cases,
        "detractor_cases": r.detractor_cases,
        "contacted": r.contacted,
        "time_to_first_contact_hours": {
            "median": _hours(r.median_hours_to_first_contact),
            "mean": _hours(r.mean_hours_to_first_contact),
        },
        "resolved": r.resolved,
        "time_to_resolve_hours": {"median": _hours(r.median_hours_to_resolve), "mean": _hours(r.mean_hours_to_resolve)},
        "detractors_contacted_within_sla": r.detractors_contacted_within_sla,
        "detractors_due": r.detractors_due,
        "contacted_within_sla_share": _share(r.detractors_contacted_within_sla, r.detractors_due),
        "detractors_recovered": r.detractors_recovered,
        "recovery_rate": _share(r.detractors_recovered, r.detractor_cases),
        "passives": p.passives,
        "passives_asked": p.passives_asked,
        "passives_asked_share": _share(p.passives_asked, p.passives),
    }


async def band_counts(
    session: AsyncSession, tenant_id: str, store_id: str | None, stores: frozenset[str] | None = None
) -> dict[str, int]:
    stmt = select(FeedbackRow.band, func.count()).where(FeedbackRow.tenant_id == tenant_id)
    if store_id is not None:
        stmt = stmt.where(FeedbackRow.store_id == store_id)
    if stores is not None:
        stmt = stmt.where(FeedbackRow.store_id.in_(sorted(stores)))
    rows = (await session.execute(stmt.group_by(FeedbackRow.band))).all()
    return {band: int(n) for band, n in rows}


__all__ = ["Conflict", "InvalidTransition", "Scope", "band_counts"]
