"""What the dashboard shows, gathered once per request from the read model, and rendered as HTML
or as CSV (every table exports). Filters: store, region, channel, period and date."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from .figures import NpsPoint, Scope, comments, nps_breakdown, nps_series, score_distribution, stores_seen, themes
from .kpis import case_queue, weekly_kpis
from .periods import Period, PeriodKind
from .views import (
    change_html,
    csv_link,
    e,
    fmt,
    nps_cell,
    page,
    scores_svg,
    select,
    sentiment_bar,
    table,
    trend_svg,
)

TRENDS = {PeriodKind.DAY: 30, PeriodKind.WEEK: 13, PeriodKind.MONTH: 12, PeriodKind.QUARTER: 8, PeriodKind.YEAR: 5}
CHANNELS = ["pos", "web", "app", "email", "sms", "kiosk", "call_center", "other"]
TABLES = ("trend", "scores", "stores", "themes", "cases", "kpis", "comments")


@dataclass
class Board:
    scope: Scope
    period: Period
    min_answers: int
    trend: list[NpsPoint]
    scores: list[tuple[int, int]]
    stores: list[dict[str, Any]]
    themes: list[dict[str, Any]]
    cases: list[dict[str, Any]]
    kpis: list[dict[str, Any]]
    comments: list[dict[str, Any]]
    known_stores: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def current(self) -> NpsPoint:
        return self.trend[-1]

    def rows(self, name: str) -> list[dict[str, Any]]:
        """A table as rows of plain values, for CSV."""
        if name == "trend":
            return [p.as_json() for p in self.trend]
        if name == "scores":
            return [{"score": s, "answers": n} for s, n in self.scores]
        if name == "kpis":
            return [
                {**k, "root_causes": "; ".join(f"{r['root_cause']}: {r['count']}" for r in k["root_causes"])}
                for k in self.kpis
            ]
        data: list[dict[str, Any]] = getattr(self, name)
        return data


async def gather(session: AsyncSession, scope: Scope, period: Period, now: datetime, min_answers: int) -> Board:
    trend = await nps_series(session, scope, period, TRENDS[period.kind], min_answers)
    first_week = Period.containing(PeriodKind.WEEK, period.start)
    last_week = Period.containing(PeriodKind.WEEK, period.end - timedelta(days=1))
    return Board(
        scope,
        period,
        min_answers,
        trend,
        await score_distribution(session, scope, period),
        await nps_breakdown(session, scope, period, "store", min_answers),
        await themes(session, scope, period),
        await case_queue(session, scope, now),
        await weekly_kpis(session, scope, first_week, last_week, now),
        await comments(session, scope, period, limit=15),
        await stores_seen(session, scope),
    )


def to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV with a header; a cell that a spreadsheet would run as a formula is prefixed with '."""
    out = io.StringIO()
    if not rows:
        out.write("no rows\r\n")
        return out.getvalue()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        clean = {}
        for k, v in row.items():
            text = "" if v is None else v.isoformat() if isinstance(v, datetime) else str(v)
            clean[k] = "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _number(text) else text
        writer.writerow(clean)
    return out.getvalue()


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def filters_form(b: Board, when: str | None) -> str:
    s = b.scope
    stores = [("", "all stores"), *((sid, sid) for sid, _ in b.known_stores)]
    regions = sorted({r for _, r in b.known_stores if r})
    periods = [(str(k), str(k)) for k in PeriodKind]
    return (
        '<form class="filters" method="get" action="/">'
        + select("store_id", stores, s.store_id)
        + select("region", [("", "all regions"), *((r, r) for r in regions)], s.region)
        + select("channel", [("", "all channels"), *((c, c) for c in CHANNELS)], s.channel)
        + select("period", periods, str(b.period.kind))
        + f'<label>date <input name="date" size="11" value="{e(when or "")}" placeholder="{e(b.period.label)}"></label>'
        + "<button>Apply</button></form>"
    )


def render(b: Board, header: str, when: str | None, query: dict[str, str]) -> str:
    q = urlencode({k: v for k, v in query.items() if v})
    p = b.current
    m = b.min_answers
    cards = (
        '<div class="cards">'
        f'<div class="card"><div class="muted">NPS {e(p.period)}</div><div class="big" id="headline-nps">'
        f"{nps_cell(p.n, p.nps, p.margin, m)}</div><div>{change_html(p)}</div></div>"
        f'<div class="card"><div class="muted">answers</div><div class="big" id="headline-n">{p.n}</div>'
        f"<div>{p.promoters} promoters, {p.passives} passives, {p.detractors} detractors</div></div></div>"
    )
    empty = "" if p.n else f'<p class="small" id="empty-state">No answers in {e(p.period)} for these filters.</p>'
    stores = table(
        ["store", "n", "NPS (95% margin)", "promoters", "passives", "detractors"],
        [
            [
                e(r["store"] or "-"),
                str(r["n"]),
                nps_cell(r["n"], r["nps"], r["margin"], m),
                str(r["promoters"]),
                str(r["passives"]),
                str(r["detractors"]),
            ]
            for r in b.stores
        ],
        "No answers in this period.",
        "stores-table",
    )
    themes = table(
        ["theme", "mentions", "vs previous", "sentiment", "positive", "neutral", "negative", "from detractors"],
        [
            [
                e(t["theme"]),
                str(t["mentions"]),
                f"{t['change']:+d}",
                sentiment_bar(t["positive"], t["neutral"], t["negative"]),
                str(t["positive"]),
                str(t["neutral"]),
                str(t["negative"]),
                str(t["detractors"]),
            ]
            for t in b.themes
        ],
        "No themes in this period.",
        "themes-table",
    )
    sla_class = {"overdue": "overdue", "due soon": "due-soon", "met": "met"}
    cases = table(
        ["opened (UTC)", "store", "segment", "score", "status", "priority", "SLA due (UTC)", "SLA", "comment"],
        [
            [
                e(c["opened_at"].strftime("%Y-%m-%d %H:%M") if c["opened_at"] else ""),
                e(c["store_id"] or "-"),
                e(c["segment"]),
                e(c["score"]),
                e(c["status"]),
                e(c["priority"]),
                e(c["sla_due_at"].strftime("%Y-%m-%d %H:%M") if c["sla_due_at"] else "-"),
                f'<span class="{sla_class.get(c["sla_state"], "")}">{e(c["sla_state"])}</span>',
                e(c["comment"]),
            ]
            for c in b.cases
        ],
        "No open cases.",
        "cases-table",
    )
    kpis = table(
        [
            "week",
            "store",
            "detractor cases",
            "contacted within SLA",
            "first contact p50 / p90",
            "resolve p50 / p90",
            "recovery rate",
            "passives asked",
            "root causes",
        ],
        [
            [
                e(k["week"]),
                e(k["store_id"] or "-"),
                str(k["detractor_cases"]),
                f"{fmt(k['contacted_within_sla_share'], digits=0)}%"
                if k["contacted_within_sla_share"] is not None
                else "-",
                f"{fmt(k['time_to_first_contact_p50_h'], digits=1)} h / "
                f"{fmt(k['time_to_first_contact_p90_h'], digits=1)} h",
                f"{fmt(k['time_to_resolve_p50_h'], digits=1)} h / {fmt(k['time_to_resolve_p90_h'], digits=1)} h",
                f"{fmt(k['recovery_rate'])}%" if k["recovery_rate"] is not None else "-",
                f"{fmt(k['passives_asked_share'])}% of {k['passives']}" if k["passives"] else "-",
                e("; ".join(f"{r['root_cause']} ({r['count']})" for r in k["root_causes"])),
            ]
            for k in b.kpis
        ],
        "No cases or passives in this period.",
        "kpis-table",
    )
    comments = table(
        ["when (UTC)", "store", "channel", "score", "language", "comment"],
        [
            [
                e(c["occurred_at"].strftime("%Y-%m-%d %H:%M")),
                e(c["store_id"] or "-"),
                e(c["channel"]),
                e(c["score"]),
                e(c["language"] or ""),
                e(c["comment"]),
            ]
            for c in b.comments
        ],
        "No comments in this period.",
        "comments-table",
    )
    body = f"""<h1>npsloop</h1>{header}{filters_form(b, when)}{empty}{cards}
<div class="grid"><div><h2>NPS over time, with its 95% margin {csv_link("trend", q)}</h2>{trend_svg(b.trend)}
<p class="muted">Hollow dots: fewer than {m} answers, no margin shown.</p></div>
<div><h2>Score distribution {csv_link("scores", q)}</h2>{scores_svg(b.scores)}</div></div>
<h2>NPS by store {csv_link("stores", q)}</h2>{stores}
<h2>Themes and their sentiment {csv_link("themes", q)}</h2>{themes}
<h2>Case queue {csv_link("cases", q)}</h2>{cases}
<h2>Closed-loop KPIs per store and week {csv_link("kpis", q)}</h2>{kpis}
<h2>Newest comments {csv_link("comments", q)}</h2>{comments}"""
    return page("npsloop dashboard", body)
