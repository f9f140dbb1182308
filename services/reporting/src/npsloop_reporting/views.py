"""Server-rendered HTML for the dashboard: inline SVG charts and plain tables, no script.
Every value that comes from data or the request goes through `e()` (html.escape)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from .figures import NpsPoint

STYLE = """<style>body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:78rem;color:#222}
table{border-collapse:collapse;margin:.3rem 0 1rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;
font-size:.9rem}th{background:#f4f4f4}.small{color:#a60}.err{color:#b00;font-weight:bold}.muted{color:#777}
.cards{display:flex;gap:1rem;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;min-width:12rem}
.big{font-size:2rem;font-weight:bold}.grid{display:grid;grid-template-columns:1fr 1fr;gap:1.5rem}
form.filters label{margin-right:.8rem}h2{margin:1.2rem 0 .3rem;font-size:1.15rem}.csv{font-size:.8rem;margin-left:.5rem}
.overdue{color:#b00;font-weight:bold}.due-soon{color:#a60}.met{color:#2a7}.sig{color:#2a7;font-weight:bold}</style>"""


def e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: float | None, sign: bool = False, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def nps_cell(n: int, nps: float | None, margin: float | None, min_answers: int) -> str:
    if n == 0 or nps is None:
        return '<span class="muted">no answers</span>'
    if margin is None:
        return f'{nps:+.0f} <span class="small">(too few answers: n &lt; {min_answers})</span>'
    return f"{nps:+.0f} &plusmn;{margin:.0f}"


def change_html(p: NpsPoint) -> str:
    if p.change is None:
        return '<span class="muted">no previous period to compare</span>'
    if p.significant is None:
        return f'{p.change:+.0f} vs previous <span class="muted">(not tested: too few answers)</span>'
    if p.significant:
        return f'{p.change:+.0f} vs previous <span class="sig">significant</span> (z = {p.z:.2f})'
    return f'{p.change:+.0f} vs previous <span class="muted">not significant</span> (z = {p.z:.2f})'


def short(label: str) -> str:
    """An axis label: 2026-W47 -> W47, 2026-11 -> 2026-11, 2026-11-23 -> 11-23."""
    if "-W" in label:
        return label.split("-", 1)[1]
    return label[5:] if label.count("-") == 2 else label


def trend_svg(points: Sequence[NpsPoint], width: int = 560, height: int = 220) -> str:
    """NPS per period with its 95% margin as a band; periods with too few answers are hollow dots."""
    left, right, top, bottom = 40, 10, 10, 30
    w, h = width - left - right, height - top - bottom
    n = max(len(points), 1)

    def x(i: int) -> float:
        return left + (w * (i + 0.5) / n)

    def y(v: float) -> float:
        return top + h * (100 - max(-100.0, min(100.0, v))) / 200

    grid = "".join(
        f'<line x1="{left}" x2="{left + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="{"#999" if v == 0 else "#eee"}"/>'
        f'<text x="{left - 4}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end">{v:+d}</text>'
        for v in (-100, -50, 0, 50, 100)
    )
    band_pts = [(i, p.nps, p.margin) for i, p in enumerate(points) if p.nps is not None and p.margin is not None]
    band = ""
    if band_pts:
        upper = " ".join(f"{x(i):.1f},{y(v + m):.1f}" for i, v, m in band_pts)
        lower = " ".join(f"{x(i):.1f},{y(v - m):.1f}" for i, v, m in reversed(band_pts))
        band = (
            f'<polygon class="margin-band" points="{upper} {lower}" fill="#3a7bd5" fill-opacity="0.18" stroke="none"/>'
        )
    line_pts = [(i, p.nps, p) for i, p in enumerate(points) if p.nps is not None]
    line = ""
    if len(line_pts) > 1:
        coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v, _ in line_pts)
        line = f'<polyline class="nps-line" fill="none" stroke="#3a7bd5" stroke-width="2" points="{coords}"/>'
    dots = "".join(
        f'<circle class="nps-point" cx="{x(i):.1f}" cy="{y(v):.1f}" r="4" '
        f'fill="{"#3a7bd5" if p.margin is not None else "#fff"}" stroke="#3a7bd5">'
        f"<title>{e(p.period)}: NPS {v:+.0f}, n={p.n}"
        f"{'' if p.margin is None else f', ±{p.margin:.0f}'}</title></circle>"
        for i, v, p in line_pts
    )
    step = max(1, -(-n // 7))
    labels = "".join(
        f'<text x="{x(i):.1f}" y="{height - 10}" font-size="10" text-anchor="middle">{e(short(p.period))}</text>'
        for i, p in enumerate(points)
        if i % step == 0 or i == n - 1
    )
    empty = (
        f'<text x="{left + w / 2}" y="{top + h / 2}" text-anchor="middle" fill="#777">'
        "No answers in these periods</text>"
        if not line_pts
        else ""
    )
    return (
        f'<svg id="trend-chart" role="img" aria-label="NPS over time with its 95% margin" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f"{grid}{band}{line}{dots}{labels}{empty}</svg>"
    )


def scores_svg(dist: Sequence[tuple[int, int]], width: int = 420, height: int = 220) -> str:
    left, bottom, top = 30, 30, 15
    h = height - bottom - top
    peak = max((n for _, n in dist), default=0) or 1
    bw = (width - left - 10) / 11
    bars = []
    for score, n in dist:
        colour = "#2a7" if score >= 9 else "#e0a800" if score >= 7 else "#c33"
        bh = h * n / peak
        x = left + score * bw
        bars.append(
            f'<rect class="score-bar" x="{x + 2:.1f}" y="{top + h - bh:.1f}" width="{bw - 4:.1f}" height="{bh:.1f}" '
            f'fill="{colour}"><title>score {score}: {n}</title></rect>'
            f'<text x="{x + bw / 2:.1f}" y="{height - 12}" font-size="11" text-anchor="middle">{score}</text>'
            f'<text x="{x + bw / 2:.1f}" y="{top + h - bh - 3:.1f}" font-size="10" '
            f'text-anchor="middle">{n or ""}</text>'
        )
    return (
        f'<svg id="score-chart" role="img" aria-label="Score distribution" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">{"".join(bars)}</svg>'
    )


def sentiment_bar(pos: int, neu: int, neg: int) -> str:
    total = pos + neu + neg
    if not total:
        return ""
    parts = [(pos, "#2a7"), (neu, "#bbb"), (neg, "#c33")]
    x, rects = 0.0, []
    for value, colour in parts:
        wd = 120 * value / total
        if wd:
            rects.append(f'<rect x="{x:.1f}" y="0" width="{wd:.1f}" height="12" fill="{colour}"/>')
        x += wd
    return f'<svg width="120" height="12" xmlns="http://www.w3.org/2000/svg">{"".join(rects)}</svg>'


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str, table_id: str) -> str:
    """`rows` hold HTML already escaped by the caller (cells may carry markup)."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    if not rows:
        body = f'<tr><td colspan="{len(headers)}" class="muted">{e(empty)}</td></tr>'
    return f'<table id="{e(table_id)}"><tr>{head}</tr>{body}</table>'


def select(name: str, options: Sequence[tuple[str, str]], chosen: str | None) -> str:
    opts = "".join(
        f'<option value="{e(v)}"{" selected" if v == (chosen or "") else ""}>{e(label)}</option>'
        for v, label in options
    )
    return f'<label>{e(name)} <select name="{e(name)}">{opts}</select></label>'


def page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">{STYLE}</head><body>{body}</body></html>'
    )


def csv_link(table_name: str, query: str) -> str:
    return f'<a class="csv" href="/export/{e(table_name)}.csv?{e(query)}">CSV</a>'


def kv(data: dict[str, Any]) -> str:
    return " ".join(f"{e(k)}={e(v)}" for k, v in data.items())
