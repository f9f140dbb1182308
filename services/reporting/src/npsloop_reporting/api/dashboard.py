"""The dashboard, served from the reporting read model. A manager or admin key signs in once,
through a form; the browser then holds a signed, HttpOnly, SameSite cookie with an expiry (never
the key itself). Pages and CSV exports are scoped to the key's tenant and stores in SQL."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from npsloop_platform.access.http import SESSION_COOKIE, keys_of, read_session, sign_session
from npsloop_platform.access.keys import Principal, Role
from npsloop_platform.app import state_of
from npsloop_platform.db import custom_plan_session

from ..board import TABLES, gather, render, to_csv
from ..figures import Scope, known_region, known_store
from ..periods import Period, PeriodError, parse_period
from ..views import STYLE, e, page
from .reports import clock_of, reporting_settings

router = APIRouter(include_in_schema=False)
SESSION_TTL_S = 8 * 3600

_LOGIN = """<h1>npsloop</h1><p>Sign in with a <b>manager</b> or <b>admin</b> API key (<code>npsk_…</code>).
The embedded default wrote development keys to <code>.npsloop/dev-keys.env</code>.</p>{error}
<form method="post" action="/login"><label>API key <input name="key" type="password" size="70"
autocomplete="off" autofocus></label> <button>Sign in</button></form>"""


def _secret(request: Request) -> bytes:
    state = state_of(request)
    secret: bytes = state.session_secret or state.extras.get("session_secret", b"")
    if not secret:
        raise RuntimeError("no session secret: the dashboard cannot sign sessions")
    return secret


def _login_page(error: str = "", status: int = 200) -> HTMLResponse:
    msg = f'<p class="err">{e(error)}</p>' if error else ""
    return HTMLResponse(page("npsloop: sign in", _LOGIN.format(error=msg)), status_code=status)


async def session_principal(request: Request) -> Principal | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    prefix = read_session(_secret(request), cookie)
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
        sign_session(_secret(request), principal.prefix, SESSION_TTL_S, time.time()),
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


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _param(request: Request, name: str, limit: int = 128) -> str | None:
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    if len(value) > limit or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise _Refused(400, f"{name}: at most {limit} printable characters.")
    return value


async def _scope_and_period(request: Request, principal: Principal) -> tuple[Scope, Period, dict[str, str]]:
    query = {
        k: _param(request, k, 32 if k in ("period", "date") else 128) or ""
        for k in ("store_id", "region", "channel", "period", "date")
    }
    try:
        period = parse_period(query["period"] or "week", query["date"] or None, clock_of(request).date())
    except PeriodError as exc:
        raise _Refused(400, str(exc)) from None
    store, region = query["store_id"] or None, query["region"] or None
    if store is not None and not principal.may_see_store(store):
        raise _Refused(404, f"No store {store!r} in your scope.")
    db = state_of(request).db
    assert db is not None
    async with custom_plan_session(db) as session:
        if store is not None and not await known_store(session, principal.tenant_id, store):
            raise _Refused(404, f"Unknown store {store!r}: nothing was ever reported for it.")
        if region is not None and not await known_region(session, principal.tenant_id, region):
            raise _Refused(404, f"Unknown region {region!r}: nothing was ever reported for its stores.")
    scope = Scope(principal.tenant_id, principal.stores, store, region, query["channel"] or None)
    return scope, period, query


def _header(principal: Principal) -> str:
    stores = "" if principal.stores is None else ", stores " + e(", ".join(sorted(principal.stores)))
    return (
        f"<p>Signed in to <b>{e(principal.tenant_id)}</b> as a {e(principal.role)} key "
        f"({e(principal.prefix)}…){stores}."
        ' <form method="post" action="/logout" style="display:inline"><button>Sign out</button></form>'
        ' <a href="/">reset filters</a></p>'
    )


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request) -> Response:
    principal = await session_principal(request)
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    try:
        scope, period, query = await _scope_and_period(request, principal)
    except _Refused as refused:
        body = f'<h1>npsloop</h1>{_header(principal)}<p class="err" id="error">{e(refused.message)}</p>'
        return HTMLResponse(page("npsloop dashboard", body), status_code=refused.status)
    board = await _board(request, scope, period)
    return HTMLResponse(render(board, _header(principal), query["date"] or None, query))


async def _board(request: Request, scope: Scope, period: Period) -> Any:
    db = state_of(request).db
    assert db is not None
    async with custom_plan_session(db) as session:
        return await gather(session, scope, period, clock_of(request), reporting_settings(request).min_answers)


@router.get("/export/{name}.csv")
async def export(request: Request, name: str) -> Response:
    principal = await session_principal(request)
    if principal is None:
        return Response("Sign in first: /login\n", status_code=401, media_type="text/plain")
    if name not in TABLES:
        return Response(f"Unknown table; one of: {', '.join(TABLES)}\n", status_code=404, media_type="text/plain")
    try:
        scope, period, _ = await _scope_and_period(request, principal)
    except _Refused as refused:
        return Response(refused.message + "\n", status_code=refused.status, media_type="text/plain")
    board = await _board(request, scope, period)
    filename = f"npsloop-{name}-{period.label}.csv"
    return Response(
        to_csv(board.rows(name)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


__all__ = ["STYLE", "router"]
