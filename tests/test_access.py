"""Access control on real PostgreSQL: every route needs a key, tenants never see each other,
store-scoped managers see their stores, revocation reaches a replica within the cache time,
keys never reach the log, and the dashboard needs a signed, unexpired session."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from npsloop.loop import Loop
from npsloop_platform.access import KeyStore, Role
from npsloop_platform.access.http import SESSION_COOKIE, sign_session
from npsloop_platform.bus import MemoryBus
from npsloop_platform.testing.helpers import bearer, eventually, feedback_body

OPEN = {"/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}


@pytest.fixture
async def mem_loop(database_url: str) -> AsyncIterator[Loop]:
    bus = MemoryBus()
    await bus.start()
    loop = Loop(bus, database_url, log_json=False, mail_dir=None, call_task_dir=None, smtp_port=1)
    await loop.start()
    try:
        yield loop
    finally:
        await loop.stop()
        await bus.stop()


@pytest.fixture
async def http(mem_loop: Loop) -> AsyncIterator[httpx.AsyncClient]:
    app = mem_loop.app(manage_bus=False, manage_components=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://npsloop") as c:
        yield c


def feedback(score: int, **extra: object) -> dict[str, object]:
    """A posted answer without tenant_id: the key says whose it is."""
    body = {k: v for k, v in feedback_body(score, **extra).items() if k != "tenant_id"}
    return body | ({"tenant_id": extra["tenant_id"]} if "tenant_id" in extra else {})


async def key(loop: Loop, tenant: str, role: Role, stores: list[str] | None = None) -> str:
    k, _ = await loop.keys.create(tenant, role, stores, actor="test")
    return k


def routes(client: httpx.AsyncClient, app_openapi: dict[str, object]) -> list[tuple[str, str]]:
    out = []
    for path, methods in app_openapi["paths"].items():  # type: ignore[attr-defined]
        if path in OPEN:
            continue
        for method in methods:
            out.append((method.upper(), re.sub(r"\{[^}]+\}", "abcd1234", path)))
    return out


async def test_every_route_needs_a_key_and_another_tenant_finds_nothing(
    mem_loop: Loop, http: httpx.AsyncClient
) -> None:
    app = mem_loop.app(manage_bus=False, manage_components=False)
    all_routes = routes(http, app.openapi())
    assert ("POST", "/v1/feedback") in all_routes and ("GET", "/v1/cases") in all_routes  # the list is real
    admin_a, admin_b = await key(mem_loop, "tenant-a", Role.ADMIN), await key(mem_loop, "tenant-b", Role.ADMIN)
    assert (
        await http.post("/v1/feedback", json=feedback(2, customer_id="c-1"), headers=bearer(admin_a))
    ).status_code == 202

    async def stored() -> bool:
        return (await http.get("/v1/cases", headers=bearer(admin_a))).json()["cases"] != []

    await eventually(stored, timeout=20, what="tenant-a's case")
    case_a = (await http.get("/v1/cases", headers=bearer(admin_a))).json()["cases"][0]["case_id"]
    a_prefix = admin_a.split("_")[1]
    for method, path in all_routes:
        body = {"role": "source"} if path.endswith("/keys") else feedback_body(5)
        anonymous = await http.request(method, path, json=body if method == "POST" else None)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = await http.request(
            method,
            path,
            json=body if method == "POST" else None,
            headers={"Authorization": "Bearer npsk_abcdefgh_" + "x" * 43},
        )
        assert wrong.status_code == 401, (method, path)
        as_b = await http.request(method, path, params={"tenant_id": "tenant-a"}, json=None, headers=bearer(admin_b))
        assert as_b.status_code < 500 and "tenant-a" not in as_b.text, (method, path, as_b.status_code, as_b.text)
        assert case_a not in as_b.text and a_prefix not in as_b.text  # never tenant-a's data
    for method, path in (
        ("GET", "/v1/cases"),
        ("GET", "/v1/nps"),
        ("GET", "/v1/reports/nps"),
        ("GET", "/v1/reports/kpis"),
        ("GET", "/v1/admin/keys"),
        ("GET", "/v1/admin/audit"),
    ):
        seen_by_b = await http.request(method, path, headers=bearer(admin_b))
        assert seen_by_b.status_code == 200 and "tenant-a" not in seen_by_b.text
        assert seen_by_b.json().get("n", 0) == 0 and not seen_by_b.json().get("cases")
        assert not seen_by_b.json().get("kpis")


async def test_roles_are_enforced_with_403(mem_loop: Loop, http: httpx.AsyncClient) -> None:
    source, manager = await key(mem_loop, "acme", Role.SOURCE), await key(mem_loop, "acme", Role.MANAGER)
    assert (await http.get("/v1/cases", headers=bearer(source))).status_code == 403
    assert (await http.post("/v1/feedback", json=feedback_body(5), headers=bearer(manager))).status_code == 403
    assert (await http.get("/v1/admin/keys", headers=bearer(manager))).status_code == 403
    assert (await http.post("/v1/feedback", json=feedback(5), headers=bearer(source))).status_code == 202
    other = await http.post("/v1/feedback", json=feedback(5, tenant_id="globex"), headers=bearer(source))
    assert other.status_code == 403
    for header in ("npsk_x", "Basic abc", "Bearer", "Bearer a b"):
        r = await http.get("/v1/cases", headers={"Authorization": header})
        assert r.status_code == 401 and "WWW-Authenticate" in r.headers


async def test_a_store_scoped_manager_sees_only_its_stores(mem_loop: Loop, http: httpx.AsyncClient) -> None:
    source = await key(mem_loop, "acme", Role.SOURCE)
    for store in ("berlin-1", "hamburg-2"):
        body = feedback(1, store_id=store, customer_id=f"c-{store}")
        assert (await http.post("/v1/feedback", json=body, headers=bearer(source))).status_code == 202
    admin = await key(mem_loop, "acme", Role.ADMIN)

    async def both() -> bool:
        return len((await http.get("/v1/cases", headers=bearer(admin))).json()["cases"]) == 2

    await eventually(both, timeout=20, what="two cases")
    berlin = await key(mem_loop, "acme", Role.MANAGER, ["berlin-1"])
    cases = (await http.get("/v1/cases", headers=bearer(berlin))).json()["cases"]
    assert [c["store_id"] for c in cases] == ["berlin-1"]
    assert (await http.get("/v1/nps", headers=bearer(berlin))).json()["n"] == 1
    assert (await http.get("/v1/nps", params={"store_id": "hamburg-2"}, headers=bearer(berlin))).status_code == 404

    async def reported() -> bool:  # the reporting read model folds the same answers from the topics
        return (await http.get("/v1/reports/nps", headers=bearer(admin))).json()["n"] == 2

    await eventually(reported, timeout=20, what="both answers in the reporting read model")
    assert (await http.get("/v1/reports/nps", headers=bearer(berlin))).json()["n"] == 1
    outside = await http.get("/v1/reports/nps", params={"store_id": "hamburg-2"}, headers=bearer(berlin))
    assert outside.status_code == 404
    grouped = (await http.get("/v1/reports/nps", params={"group_by": "store"}, headers=bearer(berlin))).json()
    assert [g["store"] for g in grouped["groups"]] == ["berlin-1"]
    till = await key(mem_loop, "acme", Role.SOURCE, ["berlin-1"])
    outside = await http.post("/v1/feedback", json=feedback(9, store_id="hamburg-2"), headers=bearer(till))
    assert outside.status_code == 403 and "berlin-1" in outside.json()["detail"]


async def test_a_revoked_key_stops_working_on_another_replica_within_the_cache_time(mem_loop: Loop) -> None:
    now = [0.0]
    replica = KeyStore(mem_loop.actions_db, cache_ttl_s=5.0, clock=lambda: now[0])  # another process's cache
    k = await key(mem_loop, "acme", Role.SOURCE)
    assert await replica.authenticate(k) is not None
    prefix = k.split("_")[1]
    assert await mem_loop.keys.revoke(prefix, actor="test")
    assert await mem_loop.keys.authenticate(k) is None  # the replica that revoked: at once
    now[0] = 4.9
    assert await replica.authenticate(k) is not None  # still trusting its copy...
    now[0] = 5.0
    assert await replica.authenticate(k) is None  # ...for at most cache_ttl_s
    audit = await mem_loop.keys.audit("acme")
    assert [a["action"] for a in audit[:2]] == ["key.revoked", "key.created"] and audit[0]["actor"] == "test"


async def test_requests_that_miss_the_key_cache_together_share_one_lookup(mem_loop: Loop) -> None:
    """When a key's cache entry expires under load, the requests in flight all miss at once: they
    wait for one query instead of each running its own (that herd cost ingest 5% of its CPU)."""
    import asyncio

    now = [0.0]
    replica = KeyStore(mem_loop.actions_db, cache_ttl_s=5.0, clock=lambda: now[0])
    k = await key(mem_loop, "acme", Role.SOURCE)
    sessions = 0
    real = mem_loop.actions_db.sessions

    def counting() -> object:
        nonlocal sessions
        sessions += 1
        return real()

    replica.db = type("CountingDb", (), {"session": staticmethod(counting)})()  # type: ignore[assignment]
    for expiry in (0.0, 5.0):
        now[0] = expiry
        principals = await asyncio.gather(*(replica.authenticate(k) for _ in range(50)))
        assert all(p is not None and p.tenant_id == "acme" for p in principals)
    assert sessions == 2  # one lookup per expiry, not 50
    bad = await asyncio.gather(*(replica.authenticate(k[:-2] + "xx") for _ in range(5)))
    assert bad == [None] * 5  # the shared row still checks each caller's own secret


async def test_keys_never_reach_the_log(
    mem_loop: Loop, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = await key(mem_loop, "acme", Role.ADMIN)
    created = (
        await http.post("/v1/admin/keys", json={"role": "source", "name": "till 4"}, headers=bearer(admin))
    ).json()
    wrong_secret = created["key"][:-4] + "AAAA"
    assert (await http.post("/v1/feedback", json=feedback(3), headers=bearer(wrong_secret))).status_code == 401
    assert (await http.post("/v1/feedback", json=feedback(3), headers=bearer(created["key"]))).status_code == 202
    listed = (await http.get("/v1/admin/keys", headers=bearer(admin))).json()["keys"]
    assert created["prefix"] in [k["prefix"] for k in listed] and created["key"] not in str(listed)
    assert (await http.delete(f"/v1/admin/keys/{created['prefix']}", headers=bearer(admin))).status_code == 204
    secrets = {admin[14:], created["key"][14:], wrong_secret[14:]}
    leaks = [r.getMessage()[:300] for r in caplog.records if any(x in str(r.__dict__) for x in secrets)]
    assert not leaks, leaks


async def test_the_dashboard_needs_a_signed_unexpired_session(mem_loop: Loop, http: httpx.AsyncClient) -> None:
    page = await http.get("/")
    assert page.status_code == 303 and page.headers["location"] == "/login"
    login = await http.get("/login")
    assert login.status_code == 200 and "frame-ancestors 'none'" in login.headers["Content-Security-Policy"]
    source = await key(mem_loop, "acme", Role.SOURCE)
    assert (await http.post("/login", data={"key": source})).status_code == 403
    assert (await http.post("/login", data={"key": "npsk_nope"})).status_code == 401
    manager = await key(mem_loop, "acme", Role.MANAGER)
    signed_in = await http.post("/login", data={"key": manager})
    assert signed_in.status_code == 303
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=" in cookie and manager not in cookie
    dashboard = await http.get("/")  # the client sends the cookie it was given
    assert dashboard.status_code == 200 and "Signed in to <b>acme</b>" in dashboard.text
    assert "/tmp" not in dashboard.text and ".npsloop/mail" not in dashboard.text  # no server paths
    http.cookies.clear()
    prefix = manager.split("_")[1]
    forged = sign_session(b"not the server's secret", prefix, 3600)
    expired = sign_session(mem_loop.session_secret, prefix, 60, now=time.time() - 3600)
    tampered = http_cookie_swap(sign_session(mem_loop.session_secret, prefix, 3600), "admin0000")
    for bad in (forged, expired, tampered, "garbage"):
        http.cookies.set(SESSION_COOKIE, bad)
        r = await http.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/login", bad


def http_cookie_swap(cookie: str, prefix: str) -> str:
    """The same signature on another payload: must not verify."""
    import base64
    import json

    payload, _, mac = cookie.partition(".")
    data = json.loads(base64.urlsafe_b64decode(payload))
    data["p"] = prefix
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode() + "." + mac


async def test_security_headers_and_no_cors_by_default(http: httpx.AsyncClient) -> None:
    r = await http.get("/healthz", headers={"Origin": "https://evil.example"})
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "access-control-allow-origin" not in r.headers
    https = await http.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert https.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_a_key_over_its_rate_limit_gets_429_and_nothing_is_published(database_url: str) -> None:
    bus = MemoryBus()
    await bus.start()
    loop = Loop(bus, database_url, log_json=False, rate_limit_per_s=0.01, rate_limit_burst=2)
    await loop.start()
    try:
        app = loop.app(manage_bus=False, manage_components=False)
        source = await key(loop, "acme", Role.SOURCE)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as http:
            answers = [await http.post("/v1/feedback", json=feedback(5), headers=bearer(source)) for _ in range(3)]
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert answers[0].headers["RateLimit-Limit"] == "2" and answers[1].headers["RateLimit-Remaining"] == "0"
        assert int(answers[2].headers["Retry-After"]) >= 1 and "RateLimit-Reset" in answers[2].headers
        assert len(bus.messages("feedback.received.v1")) == 2
    finally:
        await loop.stop()
        await bus.stop()
