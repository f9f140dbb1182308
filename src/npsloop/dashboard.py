"""A plain HTML dashboard for the embedded default: NPS per tenant and store, newest cases."""

from __future__ import annotations

import html

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy import text

from npsloop_platform.app import StateDep
from npsloop_schemas import nps_summary

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>npsloop</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}}
.small{{color:#a60}}</style></head><body><h1>npsloop</h1>
<p>Post feedback to <code>POST /v1/feedback</code> (see <a href="/docs">/docs</a>).
Mail goes to <code>{mail_dir}</code>, call tasks to <code>{call_dir}</code>.</p>
<h2>NPS</h2><table><tr><th>tenant</th><th>store</th><th>n</th><th>NPS</th><th>95% margin</th></tr>{nps}</table>
<h2>Newest cases</h2><table><tr><th>opened</th><th>tenant</th><th>store</th><th>segment</th>
<th>status</th><th>reason</th></tr>{cases}</table></body></html>"""


@router.get("/", response_class=HTMLResponse)
async def dashboard(state: StateDep) -> HTMLResponse:
    loop = state.embedded
    async with loop.actions_db.session() as session:
        bands = (
            await session.execute(
                text(
                    "SELECT tenant_id, coalesce(store_id, '-') AS store, band, count(*) FROM actions.feedback "
                    "GROUP BY 1, 2, 3 ORDER BY 1, 2"
                )
            )
        ).all()
        cases = (
            await session.execute(
                text(
                    "SELECT opened_at, tenant_id, coalesce(store_id, '-'), segment, status, reason "
                    "FROM actions.cases ORDER BY opened_at DESC LIMIT 50"
                )
            )
        ).all()
    groups: dict[tuple[str, str], dict[str, int]] = {}
    for tenant, store, band, n in bands:
        groups.setdefault((tenant, store), {})[band] = n
    nps_rows = []
    for (tenant, store), c in groups.items():
        s = nps_summary(c.get("promoter", 0), c.get("passive", 0), c.get("detractor", 0))
        flag = ' <span class="small">(small sample)</span>' if s.small_sample else ""
        nps_rows.append(
            f"<tr><td>{html.escape(tenant)}</td><td>{html.escape(store)}</td><td>{s.n}</td>"
            f"<td>{s.nps:+.0f}{flag}</td><td>&plusmn;{s.margin_of_error:.0f}</td></tr>"
        )
    case_rows = ["<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in cases]
    ns = loop.notifier_settings
    return HTMLResponse(
        _PAGE.format(
            mail_dir=html.escape(str(ns.mail_dir or f"smtp://{ns.smtp_host}:{ns.smtp_port}")),
            call_dir=html.escape(str(ns.call_task_dir or ns.call_task_url or "-")),
            nps="".join(nps_rows) or "<tr><td colspan=5>no feedback yet</td></tr>",
            cases="".join(case_rows) or "<tr><td colspan=6>no cases yet</td></tr>",
        )
    )
