"""NPS figures in SQL on the read model: per store, region, tenant, channel and theme, per day,
week, month, quarter and year, in the store's calendar.

- NPS = %promoters - %detractors.
- Margin of error (95%) = 1.96 * SE, SE = 100 * sqrt((p + d - (p - d)^2) / n), with p and d the
  shares of promoters and detractors (DESIGN §2). Below `min_answers` (30 by default) a period
  says "too few answers" and has no margin: the normal approximation is not worth printing there.
- Change against the previous period: a two-sample z-test on the NPS difference,
  z = (NPS_1 - NPS_0) / sqrt(SE_1^2 + SE_0^2); significant at the 5% level when |z| >= 1.96, and
  only tested when both periods have at least `min_answers` answers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from .periods import Period, PeriodKind

Z95 = 1.96
TEST = (
    "two-sample z-test on the NPS difference: z = (NPS - NPS_prev) / sqrt(SE^2 + SE_prev^2), "
    "SE = 100*sqrt((p + d - (p - d)^2)/n); significant when |z| >= 1.96 (5% level) and both n >= min_answers"
)
_STEP = {
    PeriodKind.DAY: "1 day",
    PeriodKind.WEEK: "7 days",
    PeriodKind.MONTH: "1 month",
    PeriodKind.QUARTER: "3 months",
    PeriodKind.YEAR: "1 year",
}
DIMENSIONS = ("store", "region", "channel", "theme")


@dataclass(frozen=True)
class Scope:
    """Whose answers: the key's tenant and stores (None: all), narrowed by the request's filters."""

    tenant_id: str
    key_stores: frozenset[str] | None = None
    store_id: str | None = None
    region: str | None = None
    channel: str | None = None
    theme: str | None = None

    def where(self, alias: str = "r") -> tuple[str, dict[str, Any]]:
        """The WHERE clause (tenant and key scope always) and its parameters."""
        sql = [f"{alias}.tenant_id = :tenant"]
        params: dict[str, Any] = {"tenant": self.tenant_id}
        if self.key_stores is not None:
            sql.append(f"{alias}.store_id = ANY(CAST(:key_stores AS text[]))")
            params["key_stores"] = sorted(self.key_stores)
        if self.store_id is not None:
            sql.append(f"{alias}.store_id = :store_id")
            params["store_id"] = self.store_id
        if self.region is not None:
            sql.append(f"{alias}.region = :region")
            params["region"] = self.region
        if self.channel is not None and alias == "r":
            sql.append("r.channel = :channel")
            params["channel"] = self.channel
        if self.theme is not None and alias == "r":
            sql.append(
                "EXISTS (SELECT 1 FROM reporting.response_themes th "
                "WHERE th.feedback_event_id = r.feedback_event_id AND th.theme = :theme)"
            )
            params["theme"] = self.theme
        return " AND ".join(sql), params


@dataclass(frozen=True)
class NpsPoint:
    period: str
    start: date
    end: date
    n: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None
    se: float | None
    margin: float | None
    too_few_answers: bool
    change: float | None = None
    z: float | None = None
    significant: bool | None = None
    previous_n: int | None = None

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["start"], out["end"] = self.start.isoformat(), self.end.isoformat()
        for k in ("nps", "se", "margin", "change", "z"):
            if out[k] is not None:
                out[k] = round(out[k], 2)
        return out


_COUNTS = """count(*) AS n,
    count(*) FILTER (WHERE r.band = 'promoter') AS p,
    count(*) FILTER (WHERE r.band = 'passive') AS pa,
    count(*) FILTER (WHERE r.band = 'detractor') AS d"""

_STATS = """CASE WHEN n > 0 THEN 100.0 * (p - d) / n END AS nps,
    CASE WHEN n > 0 THEN 100.0 * sqrt(greatest(CAST(p + d AS float8) / n - power(CAST(p - d AS float8) / n, 2), 0) / n)
    END AS se"""


async def nps_series(
    session: AsyncSession, scope: Scope, period: Period, count: int = 1, min_answers: int = 30
) -> list[NpsPoint]:
    """`count` periods ending with `period` (oldest first), each with its change against the one before."""
    first = period.shift(-count)  # one more, for the first point's change
    where, params = scope.where()
    sql = f"""
WITH buckets AS (
    SELECT CAST(g AS date) AS start
    FROM generate_series(CAST(:first AS timestamp), CAST(:last AS timestamp), interval '{_STEP[period.kind]}') AS g
), counts AS (
    SELECT CAST(date_trunc(:kind, r.local_at) AS date) AS start, {_COUNTS}
    FROM reporting.responses r
    WHERE {where} AND r.local_at >= :first AND r.local_at < :end
    GROUP BY 1
), filled AS (
    SELECT b.start, coalesce(c.n, 0) AS n, coalesce(c.p, 0) AS p, coalesce(c.pa, 0) AS pa, coalesce(c.d, 0) AS d
    FROM buckets b LEFT JOIN counts c USING (start)
), s AS (SELECT *, {_STATS} FROM filled)
SELECT start, n, p, pa, d, nps, se,
    CASE WHEN n >= :min_n THEN {Z95} * se END AS margin,
    nps - lag(nps) OVER w AS change,
    CASE WHEN n >= :min_n AND lag(n) OVER w >= :min_n
         THEN (nps - lag(nps) OVER w) / nullif(sqrt(power(se, 2) + power(lag(se) OVER w, 2)), 0) END AS z,
    lag(n) OVER w AS prev_n
FROM s WINDOW w AS (ORDER BY start) ORDER BY start
"""
    params |= {
        "first": datetime.combine(first.start, datetime.min.time()),
        "last": datetime.combine(period.start, datetime.min.time()),
        "end": datetime.combine(period.end, datetime.min.time()),
        "kind": str(period.kind),
        "min_n": min_answers,
    }
    rows = (await session.execute(text(sql), params)).all()
    points = []
    for row in rows[1:]:
        p = Period.containing(period.kind, row.start)
        z = row.z
        points.append(
            NpsPoint(
                p.label,
                p.start,
                p.end,
                row.n,
                row.p,
                row.pa,
                row.d,
                _f(row.nps),
                _f(row.se),
                _f(row.margin),
                row.n < min_answers,
                _f(row.change),
                _f(z),
                None if z is None else abs(float(z)) >= Z95,
                row.prev_n,
            )
        )
    return points


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


async def nps_breakdown(
    session: AsyncSession, scope: Scope, period: Period, by: str, min_answers: int = 30
) -> list[dict[str, Any]]:
    """One row per store, region, channel or theme for one period, largest n first."""
    if by not in DIMENSIONS:
        raise ValueError(f"group_by must be one of {', '.join(DIMENSIONS)}")
    where, params = scope.where()
    if by == "theme":
        source, key = "reporting.responses r JOIN reporting.response_themes t USING (feedback_event_id)", "t.theme"
    else:
        source, key = "reporting.responses r", {"store": "r.store_id", "region": "r.region", "channel": "r.channel"}[by]
    sql = f"""
WITH c AS (
    SELECT coalesce({key}, '') AS key, {_COUNTS}
    FROM {source}
    WHERE {where} AND r.local_at >= :start AND r.local_at < :end
    GROUP BY 1
), s AS (SELECT *, {_STATS} FROM c)
SELECT key, n, p, pa, d, nps, se, CASE WHEN n >= :min_n THEN {Z95} * se END AS margin
FROM s ORDER BY n DESC, key
"""
    params |= {
        "start": datetime.combine(period.start, datetime.min.time()),
        "end": datetime.combine(period.end, datetime.min.time()),
        "min_n": min_answers,
    }
    rows = (await session.execute(text(sql), params)).all()
    return [
        {
            by: r.key or None,
            "n": r.n,
            "promoters": r.p,
            "passives": r.pa,
            "detractors": r.d,
            "nps": None if r.nps is None else round(float(r.nps), 2),
            "margin": None if r.margin is None else round(float(r.margin), 2),
            "too_few_answers": r.n < min_answers,
        }
        for r in rows
    ]


async def score_distribution(session: AsyncSession, scope: Scope, period: Period) -> list[tuple[int, int]]:
    where, params = scope.where()
    sql = f"""
SELECT g AS score, count(r.score) AS n
FROM generate_series(0, 10) AS g
LEFT JOIN reporting.responses r ON r.score = g AND {where} AND r.local_at >= :start AND r.local_at < :end
GROUP BY g ORDER BY g
"""
    params |= {
        "start": datetime.combine(period.start, datetime.min.time()),
        "end": datetime.combine(period.end, datetime.min.time()),
    }
    return [(int(r.score), int(r.n)) for r in (await session.execute(text(sql), params)).all()]


async def themes(session: AsyncSession, scope: Scope, period: Period, limit: int = 20) -> list[dict[str, Any]]:
    """Themes of the period with their sentiment and mentions, and the change in mentions against
    the previous period (what moved most comes first in the digest)."""
    where, params = scope.where()
    prev = period.previous
    sql = f"""
WITH m AS (
    SELECT t.theme, r.local_at >= :start AS current, t.sentiment, t.compound, r.band
    FROM reporting.responses r JOIN reporting.response_themes t USING (feedback_event_id)
    WHERE {where} AND r.local_at >= :prev AND r.local_at < :end
)
SELECT theme,
    count(*) FILTER (WHERE current) AS mentions,
    count(*) FILTER (WHERE NOT current) AS previous,
    count(*) FILTER (WHERE current AND sentiment = 'positive') AS positive,
    count(*) FILTER (WHERE current AND sentiment = 'neutral') AS neutral,
    count(*) FILTER (WHERE current AND sentiment = 'negative') AS negative,
    avg(compound) FILTER (WHERE current) AS compound,
    count(*) FILTER (WHERE current AND band = 'detractor') AS detractors
FROM m GROUP BY theme
ORDER BY mentions DESC, abs(count(*) FILTER (WHERE current) - count(*) FILTER (WHERE NOT current)) DESC, theme
LIMIT :limit
"""
    params |= {
        "prev": datetime.combine(prev.start, datetime.min.time()),
        "start": datetime.combine(period.start, datetime.min.time()),
        "end": datetime.combine(period.end, datetime.min.time()),
        "limit": limit,
    }
    out = []
    for r in (await session.execute(text(sql), params)).all():
        out.append(
            {
                "theme": r.theme,
                "mentions": r.mentions,
                "previous": r.previous,
                "change": r.mentions - r.previous,
                "positive": r.positive,
                "neutral": r.neutral,
                "negative": r.negative,
                "compound": None if r.compound is None else round(float(r.compound), 3),
                "detractors": r.detractors,
            }
        )
    return out


async def comments(
    session: AsyncSession, scope: Scope, period: Period, band: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """The newest comments of the period (for promoter stories: `band='promoter'`)."""
    where, params = scope.where()
    band_sql = " AND r.band = :band" if band else ""
    sql = f"""
SELECT r.occurred_at, r.store_id, r.channel, r.score, r.band, r.comment, r.language
FROM reporting.responses r
WHERE {where} AND r.local_at >= :start AND r.local_at < :end AND r.comment IS NOT NULL AND r.comment <> ''{band_sql}
ORDER BY r.score DESC, length(r.comment) DESC, r.occurred_at DESC LIMIT :limit
"""
    params |= {
        "start": datetime.combine(period.start, datetime.min.time()),
        "end": datetime.combine(period.end, datetime.min.time()),
        "limit": limit,
        "band": band,
    }
    if not band:
        params.pop("band")
        sql = sql.replace("ORDER BY r.score DESC, length(r.comment) DESC, ", "ORDER BY ")
    return [dict(r._mapping) for r in (await session.execute(text(sql), params)).all()]


async def known_store(session: AsyncSession, tenant_id: str, store_id: str) -> bool:
    """Has the read model ever seen this store (an answer or a case)?"""
    sql = """SELECT EXISTS (SELECT 1 FROM reporting.responses WHERE tenant_id = :t AND store_id = :s)
          OR EXISTS (SELECT 1 FROM reporting.cases WHERE tenant_id = :t AND store_id = :s)"""
    return bool((await session.execute(text(sql), {"t": tenant_id, "s": store_id})).scalar())


async def known_region(session: AsyncSession, tenant_id: str, region: str) -> bool:
    sql = "SELECT EXISTS (SELECT 1 FROM reporting.responses WHERE tenant_id = :t AND region = :r)"
    return bool((await session.execute(text(sql), {"t": tenant_id, "r": region})).scalar())


async def stores_seen(session: AsyncSession, scope: Scope) -> list[tuple[str, str | None]]:
    """(store_id, region) of every store with answers in the scope, for the dashboard's filters."""
    where, params = Scope(scope.tenant_id, scope.key_stores).where()
    sql = (
        "SELECT DISTINCT r.store_id, r.region FROM reporting.responses r "
        f"WHERE {where} AND r.store_id IS NOT NULL ORDER BY 1"
    )
    return [(r.store_id, r.region) for r in (await session.execute(text(sql), params)).all()]
