"""The weekly digest of one store (or a region's roll-up): NPS with its margin and its 13-week
trend as a small chart, answer counts, the themes that moved most, three promoter stories
(comments with emails and phone numbers masked), open, overdue and recovered cases, and time to
first contact. Rendered as HTML (tables and inline styles only: mail clients drop SVG and CSS
files) and as plain text; every user-supplied string is HTML-escaped."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from .figures import NpsPoint, Scope, comments, nps_series, themes
from .kpis import open_cases, weekly_kpis
from .periods import Period

TREND_WEEKS = 13


@dataclass
class Digest:
    tenant_id: str
    title: str  # "berlin-1" or "Region North"
    week: Period
    trend: list[NpsPoint]
    movers: list[dict[str, Any]] = field(default_factory=list)
    stories: list[dict[str, Any]] = field(default_factory=list)
    kpis: dict[str, Any] = field(default_factory=dict)
    min_answers: int = 30
    dashboard_url: str = ""

    @property
    def current(self) -> NpsPoint:
        return self.trend[-1]


async def build_digest(
    session: AsyncSession,
    scope: Scope,
    title: str,
    week: Period,
    now: datetime,
    min_answers: int = 30,
    dashboard_url: str = "",
) -> Digest:
    trend = await nps_series(session, scope, week, TREND_WEEKS, min_answers)
    moved = await themes(session, scope, week, limit=50)
    movers = sorted(moved, key=lambda t: (-abs(t["change"]), -t["mentions"], t["theme"]))[:5]
    stories = await comments(session, scope, week, band="promoter", limit=3)
    rows = await weekly_kpis(session, scope, week, week, now, by_store=False)
    kpis = dict(rows[0]) if rows else {}
    kpis["now"] = await open_cases(session, scope, now)
    return Digest(scope.tenant_id, title, week, trend, movers, stories, kpis, min_answers, dashboard_url)


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def nps_text(p: NpsPoint, min_answers: int) -> str:
    if p.n == 0 or p.nps is None:
        return "no answers"
    if p.margin is None:
        return f"{p.nps:+.0f} (too few answers for a margin: n={p.n} < {min_answers})"
    return f"{p.nps:+.0f} ± {p.margin:.0f} (n={p.n})"


def change_text(p: NpsPoint) -> str:
    if p.change is None:
        return "no comparison (no answers the week before)"
    if p.significant is None:
        return f"{p.change:+.0f} against the week before (not tested: too few answers)"
    verdict = "significant" if p.significant else "not significant"
    return f"{p.change:+.0f} against the week before ({verdict}, z = {p.z:.2f})"


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} h"


def _trend_chart(trend: list[NpsPoint]) -> str:
    """Bars from -100 to +100 around a zero line, one per week, as a table (works in mail clients)."""
    cells_up, cells_down, labels = [], [], []
    for p in trend:
        v = p.nps if p.nps is not None else 0.0
        up, down = max(v, 0.0) * 0.4, max(-v, 0.0) * 0.4
        colour = "#2a7" if v >= 0 else "#c33"
        title = f"{p.period}: {nps_text(p, 0)}"
        bar_up = f'<div style="height:{up:.0f}px;background:{colour}" title="{_e(title)}"></div>' if up else ""
        bar_down = f'<div style="height:{down:.0f}px;background:{colour}" title="{_e(title)}"></div>' if down else ""
        cells_up.append(f'<td style="vertical-align:bottom;width:18px;height:40px">{bar_up}</td>')
        cells_down.append(
            f'<td style="vertical-align:top;width:18px;height:40px;border-top:1px solid #999">{bar_down}</td>'
        )
        labels.append(f'<td style="font-size:9px;color:#666">{_e(p.period[-2:])}</td>')
    return (
        '<table role="img" aria-label="NPS trend, 13 weeks" cellspacing="2" style="border-collapse:separate">'
        f"<tr>{''.join(cells_up)}</tr><tr>{''.join(cells_down)}</tr><tr>{''.join(labels)}</tr></table>"
    )


def render_html(d: Digest) -> str:
    p, k = d.current, d.kpis
    now = k.get("now", {"open": 0, "overdue": 0})
    movers = (
        "".join(
            f"<tr><td>{_e(t['theme'])}</td><td>{t['mentions']}</td><td>{t['change']:+d}</td>"
            f"<td>{t['positive']} / {t['neutral']} / {t['negative']}</td></tr>"
            for t in d.movers
        )
        or '<tr><td colspan="4">No themes this week.</td></tr>'
    )
    stories = (
        "".join(
            f'<blockquote style="margin:.5em 0;padding-left:.8em;border-left:3px solid #2a7">'
            f"“{_e(s['comment'])}” <small>({s['score']}/10, {_e(s['store_id'] or '')}, {_e(s['channel'])})</small>"
            "</blockquote>"
            for s in d.stories
        )
        or "<p>No promoter left a comment this week.</p>"
    )
    empty = "" if p.n else '<p style="color:#a60"><b>No answers this week.</b> The figures below are empty.</p>'
    link = f'<p><a href="{_e(d.dashboard_url)}">Open the dashboard</a></p>' if d.dashboard_url else ""
    title = f"{_e(d.title)}: week {_e(d.week.label)}"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family:system-ui,sans-serif;max-width:40em">
<h1 style="font-size:1.3em">{_e(d.title)}: your week {_e(d.week.label)}</h1>{empty}
<p style="font-size:1.2em">NPS <b>{_e(nps_text(p, d.min_answers))}</b><br>
<small>{_e(change_text(p))}</small></p>
<h2 style="font-size:1.1em">13-week trend</h2>{_trend_chart(d.trend)}
<h2 style="font-size:1.1em">Answers</h2>
<p>{p.n} answers: {p.promoters} promoters, {p.passives} passives, {p.detractors} detractors.</p>
<h2 style="font-size:1.1em">Themes that moved most</h2>
<table cellpadding="3"><tr><th align="left">theme</th><th>mentions</th><th>vs last week</th>
<th>positive / neutral / negative</th></tr>{movers}</table>
<h2 style="font-size:1.1em">Promoter stories</h2>{stories}
<h2 style="font-size:1.1em">Cases</h2>
<p>Open now: {now["open"]}, of them overdue (not contacted within their SLA): {now["overdue"]}.<br>
Opened this week: {k.get("detractor_cases", 0)} detractor cases, {k.get("recovered", 0)} of them recovered.<br>
Time to first contact: p50 {_hours(k.get("time_to_first_contact_p50_h"))},
p90 {_hours(k.get("time_to_first_contact_p90_h"))}.</p>{link}
</body></html>"""


def render_text(d: Digest) -> str:
    p, k = d.current, d.kpis
    lines = [
        f"{d.title}: your week {d.week.label}",
        "",
        f"NPS {nps_text(p, d.min_answers)}; {change_text(p)}",
        "Trend: " + ", ".join(f"{t.period[-3:]} {'-' if t.nps is None else f'{t.nps:+.0f}'}" for t in d.trend),
        f"Answers: {p.n} ({p.promoters} promoters, {p.passives} passives, {p.detractors} detractors)",
        "Themes that moved most: " + (", ".join(f"{t['theme']} ({t['change']:+d})" for t in d.movers) or "none"),
        "Promoter stories:",
        *[f'  "{s["comment"]}" ({s["score"]}/10)' for s in d.stories],
        f"Open cases now: {k.get('now', {}).get('open', 0)}, overdue {k.get('now', {}).get('overdue', 0)}; "
        f"opened this week: {k.get('detractor_cases', 0)}, recovered {k.get('recovered', 0)}",
        f"Time to first contact: p50 {_hours(k.get('time_to_first_contact_p50_h'))}, "
        f"p90 {_hours(k.get('time_to_first_contact_p90_h'))}",
    ]
    return "\n".join(lines) + "\n"
