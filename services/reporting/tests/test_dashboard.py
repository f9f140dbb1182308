"""The dashboard's pages and CSV exports over HTTP: the session, the key's scope in every table,
escaping, and bad filters answered with a page that says why (the browser test drives chromium)."""

from __future__ import annotations

from typing import Any

import httpx

from npsloop_platform.access import Role


async def signed_in(
    http: httpx.AsyncClient, parts: Any, tenant: str, role: Role, stores: list[str] | None = None
) -> None:
    key, _ = await parts.keys.create(tenant, role, stores, actor="test")
    http.cookies.clear()
    r = await http.post("/login", data={"key": key})
    assert r.status_code == 303
    http.cookies.set("npsloop_session", r.cookies["npsloop_session"])


async def test_the_dashboard_shows_the_scope_and_escapes(api: tuple[httpx.AsyncClient, Any]) -> None:
    http, parts = api
    assert (await http.get("/")).status_code == 303
    assert (await http.get("/export/stores.csv")).status_code == 401
    await signed_in(http, parts, "acme", Role.ADMIN)
    page = await http.get("/", params={"date": "2026-W47"})
    assert page.status_code == 200
    html = page.text
    assert 'id="trend-chart"' in html and 'class="margin-band"' in html and html.count('class="score-bar"') == 11
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert '<option value="hamburg-2"' in html and "globex" not in html
    assert 'id="headline-n">41<' in html
    csv = await http.get("/export/comments.csv", params={"date": "2026-W47"})
    assert csv.status_code == 200 and "<script>alert(1)</script>" in csv.text  # CSV is data, not markup
    assert (await http.get("/export/nothing.csv")).status_code == 404

    await signed_in(http, parts, "acme", Role.MANAGER, ["berlin-1"])
    html = (await http.get("/", params={"date": "2026-W47"})).text
    assert 'id="headline-n">40<' in html and "hamburg-2" not in html and "alert(1)" not in html
    assert "overdue" not in (await http.get("/export/cases.csv", params={"date": "2026-W47"})).text
    outside = await http.get("/", params={"store_id": "hamburg-2"})
    assert outside.status_code == 404 and "No store &#x27;hamburg-2&#x27; in your scope" in outside.text
    assert (await http.get("/export/stores.csv", params={"store_id": "hamburg-2"})).status_code == 404

    await signed_in(http, parts, "globex", Role.MANAGER)
    html = (await http.get("/", params={"date": "2026-W47"})).text
    assert 'id="headline-n">1<' in html and "acme" not in html.replace("Signed in to <b>globex", "")


async def test_bad_filters_say_why(api: tuple[httpx.AsyncClient, Any]) -> None:
    http, parts = api
    await signed_in(http, parts, "acme", Role.ADMIN)
    for params, status, says in [
        ({"date": "2026-W54"}, 400, "2026 has 53 ISO weeks"),
        ({"period": "fortnight"}, 400, "unknown period"),
        ({"region": "atlantis"}, 404, "Unknown region"),
        ({"store_id": "x" * 300}, 400, "at most 128"),
        ({"store_id": "<b>nope</b>"}, 404, "&lt;b&gt;nope&lt;/b&gt;"),
    ]:
        r = await http.get("/", params=params)
        assert r.status_code == status and says in r.text, (params, r.status_code)
    empty = await http.get("/", params={"date": "2020-W10"})
    assert empty.status_code == 200 and "No answers in 2020-W10 for these filters." in empty.text
