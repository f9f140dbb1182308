"""Closed-loop KPIs per store and week (the week a case was opened, or an answer given, in the
store's calendar), in SQL on the read model:

- contacted within SLA: detractor cases whose first contact came by their SLA due time, of all
  detractor cases (a case without `sla_due_at` gets `default_sla_hours` from its opening);
- time to first contact, p50 and p90 (hours), of the contacted detractor cases;
- time to resolve, p50 and p90 (hours): opening to the first resolution or closing;
- recovery rate: detractor cases whose customer answered again later with 7 or more, or whose
  outcome starts with "recovered", of all detractor cases;
- passives asked: passive answers with a nurture email sent, of all passive answers;
- root causes by count, of the cases opened that week.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from .figures import Scope
from .periods import Period

_CASES = """
SELECT CAST(date_trunc('week', c.opened_local) AS date) AS week, coalesce(c.store_id, '') AS store,
    count(*) AS detractor_cases,
    count(*) FILTER (WHERE c.first_contact_at IS NOT NULL AND c.first_contact_at <= c.sla_due_at) AS within_sla,
    count(c.first_contact_at) AS contacted,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY {ttfc}) AS ttfc_p50,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY {ttfc}) AS ttfc_p90,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY {ttr}) AS ttr_p50,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY {ttr}) AS ttr_p90,
    count(*) FILTER (WHERE c.outcome ILIKE 'recovered%' OR EXISTS (
        SELECT 1 FROM reporting.responses later
        WHERE later.tenant_id = c.tenant_id AND later.customer_key = c.customer_key
          AND later.occurred_at > c.opened_at AND later.score >= 7)) AS recovered,
    count(*) FILTER (WHERE c.status NOT IN ('resolved', 'closed')) AS still_open,
    count(*) FILTER (WHERE c.status NOT IN ('resolved', 'closed') AND c.sla_due_at < :now) AS overdue
FROM reporting.cases c
WHERE {where} AND c.segment = 'detractor' AND c.opened_local >= :start AND c.opened_local < :end
GROUP BY 1, 2
""".replace("{ttfc}", "extract(epoch FROM c.first_contact_at - c.opened_at) / 3600").replace(
    "{ttr}", "extract(epoch FROM c.resolved_at - c.opened_at) / 3600"
)

_PASSIVES = """
SELECT CAST(date_trunc('week', r.local_at) AS date) AS week, coalesce(r.store_id, '') AS store,
    count(*) AS passives,
    count(*) FILTER (WHERE EXISTS (
        SELECT 1 FROM reporting.deliveries d
        WHERE d.feedback_event_id = r.feedback_event_id AND d.kind = 'nurture_email' AND d.status = 'sent')) AS asked
FROM reporting.responses r
WHERE {where} AND r.band = 'passive' AND r.local_at >= :start AND r.local_at < :end
GROUP BY 1, 2
"""

_ROOT_CAUSES = """
SELECT CAST(date_trunc('week', c.opened_local) AS date) AS week, coalesce(c.store_id, '') AS store,
    c.root_cause, count(*) AS n
FROM reporting.cases c
WHERE {where} AND c.root_cause IS NOT NULL AND c.opened_local >= :start AND c.opened_local < :end
GROUP BY 1, 2, 3 ORDER BY 1, 2, 4 DESC, 3
"""


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100.0 * part / whole, 1)


def _h(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


async def weekly_kpis(
    session: AsyncSession, scope: Scope, first: Period, last: Period, now: datetime, by_store: bool = True
) -> list[dict[str, Any]]:
    """One row per week (and store, unless `by_store` is False: the whole scope) from `first` to `last`."""
    where_c, params = scope.where("c")
    where_r, params_r = scope.where("r")
    params |= params_r
    params |= {
        "start": datetime.combine(first.start, datetime.min.time()),
        "end": datetime.combine(last.end, datetime.min.time()),
        "now": now,
    }
    cases_sql, passives_sql, causes_sql = (
        _CASES.format(where=where_c),
        _PASSIVES.format(where=where_r),
        _ROOT_CAUSES.format(where=where_c),
    )
    if not by_store:
        cases_sql = cases_sql.replace("coalesce(c.store_id, '') AS store", "'' AS store")
        passives_sql = passives_sql.replace("coalesce(r.store_id, '') AS store", "'' AS store")
        causes_sql = causes_sql.replace("coalesce(c.store_id, '') AS store", "'' AS store")
    rows: dict[tuple[Any, str], dict[str, Any]] = {}

    def row(week: Any, store: str) -> dict[str, Any]:
        key = (week, store)
        if key not in rows:
            p = Period.containing(first.kind, week)
            rows[key] = {
                "week": p.label,
                "store_id": store or None,
                "detractor_cases": 0,
                "contacted_within_sla": 0,
                "contacted_within_sla_share": None,
                "time_to_first_contact_p50_h": None,
                "time_to_first_contact_p90_h": None,
                "time_to_resolve_p50_h": None,
                "time_to_resolve_p90_h": None,
                "recovered": 0,
                "recovery_rate": None,
                "open": 0,
                "overdue": 0,
                "passives": 0,
                "passives_asked": 0,
                "passives_asked_share": None,
                "root_causes": [],
            }
        return rows[key]

    for r in (await session.execute(text(cases_sql), params)).all():
        out = row(r.week, r.store)
        out.update(
            detractor_cases=r.detractor_cases,
            contacted_within_sla=r.within_sla,
            contacted_within_sla_share=_share(r.within_sla, r.detractor_cases),
            time_to_first_contact_p50_h=_h(r.ttfc_p50),
            time_to_first_contact_p90_h=_h(r.ttfc_p90),
            time_to_resolve_p50_h=_h(r.ttr_p50),
            time_to_resolve_p90_h=_h(r.ttr_p90),
            recovered=r.recovered,
            recovery_rate=_share(r.recovered, r.detractor_cases),
            open=r.still_open,
            overdue=r.overdue,
        )
    for r in (await session.execute(text(passives_sql), params)).all():
        out = row(r.week, r.store)
        out.update(passives=r.passives, passives_asked=r.asked, passives_asked_share=_share(r.asked, r.passives))
    for r in (await session.execute(text(causes_sql), params)).all():
        row(r.week, r.store)["root_causes"].append({"root_cause": r.root_cause, "count": r.n})
    return [rows[k] for k in sorted(rows, key=lambda k: (k[0], k[1]))]


async def case_queue(session: AsyncSession, scope: Scope, now: datetime, limit: int = 50) -> list[dict[str, Any]]:
    """Open cases, most urgent first, with their SLA state: overdue, due soon (warned), on time."""
    where, params = scope.where("c")
    sql = f"""
SELECT c.case_id, c.store_id, c.segment, c.kind, c.score, c.status, c.priority, c.opened_at, c.sla_due_at,
    c.first_contact_at, c.comment,
    CASE WHEN c.first_contact_at IS NOT NULL AND c.first_contact_at <= coalesce(c.sla_due_at, c.first_contact_at)
              THEN 'met'
         WHEN c.sla_breached_at IS NOT NULL OR c.sla_due_at < :now THEN 'overdue'
         WHEN c.sla_warned_at IS NOT NULL THEN 'due soon'
         WHEN c.sla_due_at IS NULL THEN 'no SLA'
         ELSE 'on time' END AS sla_state
FROM reporting.cases c
WHERE {where} AND c.status NOT IN ('resolved', 'closed') AND c.opened_at IS NOT NULL
ORDER BY (c.first_contact_at IS NULL) DESC, (c.sla_due_at < :now) DESC, c.priority DESC NULLS LAST,
    c.sla_due_at NULLS LAST
LIMIT :limit
"""
    params |= {"now": now, "limit": limit}
    return [dict(r._mapping) for r in (await session.execute(text(sql), params)).all()]


async def open_cases(session: AsyncSession, scope: Scope, now: datetime) -> dict[str, int]:
    """Cases open right now in the scope (whenever they were opened), and how many are overdue."""
    where, params = scope.where("c")
    sql = f"""
SELECT count(*) AS open,
    count(*) FILTER (WHERE c.first_contact_at IS NULL
                       AND (c.sla_breached_at IS NOT NULL OR c.sla_due_at < :now)) AS overdue
FROM reporting.cases c
WHERE {where} AND c.status NOT IN ('resolved', 'closed') AND c.opened_at IS NOT NULL AND c.opened_at <= :now
"""
    row = (await session.execute(text(sql), params | {"now": now})).one()
    return {"open": int(row.open), "overdue": int(row.overdue)}
