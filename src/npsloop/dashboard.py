"""A plain HTML dashboard for the embedded default: NPS per store and the newest cases of the
signed-in key's tenant and stores. A manager or admin key signs in once, through a form; the
browser then holds a signed, HttpOnly, SameSite cookie with an expiry (never the key itself)."""

from __future__ import annotations

import html
import time
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import text

from npsloop_platform.access.http import SESSION_COOKIE, keys_of, read_session, sign_session
from npsloop_platform.access.keys import Principal, Role
from npsloop_platform.app import StateDep, state_of
from npsloop_schemas import nps_summary

router = APIRouter(include_in_schema=False)
SESSION_TTL_S = 8 * 3600

_STYLE = """<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
.small{color:#a60}.err{color:#b00}</style>"""

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>npsloop</title>{style}</head><body>
<h1>npsloop</h1><p>Signed in to <b>{tenant}</b> as a {role} key ({prefix}…){scope}.
<form method="post" action="/logout" style="display:inline"><button>Sign out</button></form></p>
<h2>NPS</h2><table><tr><th>store</th><th>n</th><th>NPS</th><th>95% margin</th></tr>{nps}</table>
<h2>Newest cases</h2><table><tr><th>opened</th><th>store</th><th>segment</th>
<th>status</th><th>reason</th></tr>{cases}</table></body></html>"""

_LOGIN = """<!doctype html><html><head><meta charset="utf-8"><title>npsloop: sign in</title>{style}</head><body>
<h1>npsloop</h1><p>Sign in with a <b>manager</b> or <b>admin</b> API key (<code>npsk_…</code>).
The embedded default wrote development keys to <code>.npsloop/dev-keys.env</code>.</p>{error}
<form method="post" action="/login"><label>API key <input name="key" type="password" size="70"
autocomplete="off" autofocus></label> <button>Sign in</button></form></body></html>"""


def _login_page(error: str = "", status: int = 200) -> HTMLResponse:
    msg = f'<p class="err">{html.escape(error)}</p>' if error else ""
    return HTMLResponse(_LOGIN.format(style=_STYLE, error=msg), status_code=status)


async def session_principal(request: Request) -> Principal | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    prefix = read_session(state_of(request).session_secret, cookie)
    return None if prefix is None else await keys_of(request).principal_by_prefix(prefix)


@router.get("/login", response_class=HTMLResponse)
async def login_form() -> HTMLResponse:
    return _login_page()


@router.post("/login")
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode(errors="replace"))
    key = (form.get("key") or [""])[0].strip()
    principal = await keys_of(request).authenticate(key) if key else None
    if principal is None:
        return _login_page("That key is not valid, or it was revoked.", 401)
    if principal.role not in (Role.MANAGER, Role.ADMIN):
        return _login_page("The dashboard needs a manager or admin key.", 403)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        sign_session(state_of(request).session_secret, principal.prefix, SESSION_TTL_S, time.time()),
        max_age=SESSION_TTL_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request, state: StateDep) -> Response:
    principal = await session_principal(request)
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    assert state.db is not None
    scope = "" if principal.stores is None else " AND store_id = ANY(:stores)"
    params = {"tenant": principal.tenant_id, "stores": sorted(principal.stores or ())}
    async with state.db.session() as session:
        bands = (
            await session.execute(
                text(
                    "SELECT coalesce(store_id, '-'), band, count(*) FROM actions.feedback "
                    f"WHERE tenant_id = :tenant{scope} GROUP BY 1, 2 ORDER BY 1"
                ),
                params,
            )
        ).all()
        cases = (
            await session.execute(
                text(
                    "SELECT opened_at, coalesce(store_id, '-'), segment, status, reason FROM actions.cases "
                    f"WHERE tenant_id = :tenant{scope} ORDER BY opened_at DESC LIMIT 50"
                ),
                params,
            )
        ).all()
    groups: dict[str, dict[str, int]] = {}
    for store, band, n in bands:
        groups.setdefault(store, {})[band] = n
    nps_rows = []
    for store, c in groups.items():
        s = nps_summary(c.get("promoter", 0), c.get("passive", 0), c.get("detractor", 0))
        flag = ' <span class="small">(small sample)</span>' if s.small_sample else ""
        nps_rows.append(
            f"<tr><td>{html.escape(store)}</td><td>{s.n}</td>"
            f"<td>{s.nps:+.0f}{flag}</td><td>&plusmn;{s.margin_of_error:.0f}</td></tr>"
        )
    case_rows = ["<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in cases]
    stores = "" if principal.stores is None else ", stores " + html.escape(", ".join(sorted(principal.stores)))
    return HTMLResponse(
        _PAGE.format(
            style=_STYLE,
            tenant=html.escape(principal.tenant_id),
            role=principal.role,
            prefix=principal.prefix,
            scope=stores,
            nps="".join(nps_rows) or "<tr><td colspan=4>no feedback yet</td></tr>",
            cases="".join(case_rows) or "<tr><td colspan=5>no cases yet</td></tr>",
        )
    )
