"""The case lifecycle, customer and closed-loop API over the embedded loop (memory bus, real PostgreSQL):
filters and paging, the timeline, every change a case.* event through the outbox, 409 on an
invalid transition, 422 on an unknown code, and another tenant's or store's case a 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from npsloop.loop import Loop
from npsloop_platform.access import Role
from npsloop_platform.bus import MemoryBus
from npsloop_platform.testing.helpers import bearer, eventually, feedback_body
from npsloop_schemas import parse_event


@pytest.fixture
async def mem_loop(database_url: str) -> AsyncIterator[Loop]:
    bus = MemoryBus()
    await bus.start()
    loop = Loop(bus, database_url, log_json=False, mail_dir=None, call_task_dir=None, smtp_port=1, sla_monitor=False)
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


async def key(loop: Loop, tenant: str, role: Role, stores: list[str] | None = None) -> dict[str, str]:
    k, _ = await loop.keys.create(tenant, role, stores, actor="test")
    return bearer(k)


def body(score: int, **extra: Any) -> dict[str, Any]:
    return {k: v for k, v in feedback_body(score, **extra).items() if k != "tenant_id"}


async def post_and_wait(http: httpx.AsyncClient, h: dict[str, str], bodies: list[dict[str, Any]], cases: int) -> None:
    for b in bodies:
        assert (await http.post("/v1/feedback", json=b, headers=h)).status_code == 202

    async def there() -> bool:
        return (await http.get("/v1/cases", headers=h)).json()["total"] >= cases

    await eventually(there, timeout=20, what=f"{cases} cases")


async def case_events(loop: Loop) -> list[Any]:
    async with loop.actions_db.session() as session:
        values = (await session.execute(text("SELECT value FROM actions.outbox ORDER BY id"))).scalars()
        return [parse_event(v) for v in values if b'"case.' in v]


async def test_the_lifecycle_of_a_case_with_409s_422s_and_events(mem_loop: Loop, http: httpx.AsyncClient) -> None:
    admin = await key(mem_loop, "acme", Role.ADMIN)
    await post_and_wait(http, admin, [body(2, customer_id="c-1", comment="Rude staff")], 1)
    case = (await http.get("/v1/cases", headers=admin)).json()["cases"][0]
    cid = case["case_id"]
    assert (case["kind"], case["status"], case["segment"]) == ("callback", "open", "detractor")
    url = f"/v1/cases/{cid}"

    async def post(action: str, payload: dict[str, Any], expect: int) -> dict[str, Any]:
        r = await http.post(f"{url}/{action}", json=payload, headers=admin)
        assert r.status_code == expect, (action, r.status_code, r.text)
        return dict(r.json())

    await post("assign", {"assignee": "anna"}, 200)
    await post("notes", {"note": "called, no answer"}, 200)
    await post("resolve", {"root_cause": "rudeness", "outcome": "recovered"}, 422)  # not a configured code
    contacted = await post("contacts", {"channel": "phone"}, 200)
    assert contacted["case"]["status"] == "contacted" and contacted["case"]["first_contacted_at"]
    resolved = await post("resolve", {"root_cause": "staff", "outcome": "recovered", "note": "apologised"}, 200)
    assert (resolved["case"]["root_cause"], resolved["case"]["outcome"]) == ("staff", "recovered")
    assert (
        "cannot resolve a case that is resolved"
        in (await post("resolve", {"root_cause": "staff", "outcome": "recovered"}, 409))["detail"]
    )
    await post("contacts", {}, 409)
    await post("close", {"resolution": "customer happy"}, 200)
    await post("assign", {"assignee": "bob"}, 409)
    await post("close", {}, 409)
    await post("reopen", {"note": "called back angry"}, 200)
    await post("reopen", {}, 409)

    one = (await http.get(url, headers=admin)).json()
    entries = [t["entry"] for t in one["timeline"] if not t["entry"].startswith("delivery_")]  # the notifier's
    assert entries == ["opened", "assigned", "note_added", "contacted", "resolved", "closed", "reopened"]
    assigned = next(t for t in one["timeline"] if t["entry"] == "assigned")
    assert assigned["actor"].startswith("key:") and assigned["detail"]["assignee"] == "anna"
    assert one["feedback"][0]["score"] == 2

    events = [
        e for e in await case_events(mem_loop) if e.event_type == "case.opened" or e.payload.actor != "npsloop-actions"
    ]
    got = [(e.event_type, getattr(e.payload, "change", None)) for e in events]
    assert got == [
        ("case.opened", None),
        ("case.updated", "assigned"),
        ("case.updated", "note_added"),
        ("case.updated", "contacted"),
        ("case.updated", "resolved"),
        ("case.closed", None),
        ("case.updated", "reopened"),
    ]
    for e in events[1:]:
        assert (e.payload.store_id, e.payload.customer_key) == ("berlin-1", "acme:c-1")
    assert events[5].payload.root_cause == "staff" and events[5].payload.outcome == "recovered"

    # a new open case for the same customer makes reopening the old one a conflict
    await post("resolve", {"root_cause": "staff", "outcome": "recovered"}, 200)
    await post_and_wait(http, admin, [body(1, customer_id="c-1")], 2)
    assert "another open case" in (await post("reopen", {}, 409))["detail"]


async def test_filters_paging_and_scope(mem_loop: Loop, http: httpx.AsyncClient) -> None:
    admin = await key(mem_loop, "acme", Role.ADMIN)
    bodies = [body(1, customer_id=f"b{i}", store_id="berlin-1") for i in range(3)]
    bodies += [body(7, customer_id="h0", store_id="hamburg-2", comment="Awful queue, terrible wait")]
    await post_and_wait(http, admin, bodies, 4)

    async def listed(h: dict[str, str], **params: Any) -> dict[str, Any]:
        r = await http.get("/v1/cases", params=params, headers=h)
        assert r.status_code == 200, r.text
        return dict(r.json())

    assert (await listed(admin, segment="passive"))["total"] == 1
    assert (await listed(admin, kind="callback", store_id="berlin-1"))["total"] == 3
    assert (await listed(admin, min_priority=60))["total"] == 3
    assert (await listed(admin, overdue="true"))["total"] == 0
    by_priority = [c["priority"] for c in (await listed(admin, sort="priority"))["cases"]]
    assert by_priority == sorted(by_priority, reverse=True) and len(set(by_priority)) == 2  # the nurture case last
    due = [c["sla_due_at"] for c in (await listed(admin, sort="due"))["cases"]]
    assert due == sorted(due)
    page = await listed(admin, limit=2)
    assert len(page["cases"]) == 2 and page["next_offset"] == 2
    rest = await listed(admin, limit=2, offset=2)
    assert rest["next_offset"] is None
    assert {c["case_id"] for c in page["cases"]} | {c["case_id"] for c in rest["cases"]} == {
        c["case_id"] for c in (await listed(admin))["cases"]
    }
    first = (await listed(admin, store_id="berlin-1"))["cases"][0]["case_id"]
    await http.post(f"/v1/cases/{first}/assign", json={"assignee": "anna"}, headers=admin)
    assert [c["case_id"] for c in (await listed(admin, assignee="anna"))["cases"]] == [first]

    hamburg = await key(mem_loop, "acme", Role.MANAGER, ["hamburg-2"])
    assert {c["store_id"] for c in (await listed(hamburg))["cases"]} == {"hamburg-2"}
    assert (await http.get(f"/v1/cases/{first}", headers=hamburg)).status_code == 404  # a Berlin case
    assert (await http.post(f"/v1/cases/{first}/notes", json={"note": "x"}, headers=hamburg)).status_code == 404
    other = await key(mem_loop, "globex", Role.ADMIN)
    assert (await http.get(f"/v1/cases/{first}", headers=other)).status_code == 404
    assert (await http.post(f"/v1/cases/{first}/close", json={}, headers=other)).status_code == 404
    assert (await listed(other))["total"] == 0


async def test_customer_journey_visits_and_closed_loop_figures(mem_loop: Loop, http: httpx.AsyncClient) -> None:
    admin, till = await key(mem_loop, "acme", Role.ADMIN), await key(mem_loop, "acme", Role.SOURCE, ["berlin-1"])
    await post_and_wait(
        http, admin, [body(3, customer_id="j"), body(8, customer_id="p", contact={"email": "p@example.com"})], 1
    )

    async def passive_stored() -> bool:
        return (await http.get("/v1/customers/p", headers=till)).status_code == 200

    await eventually(passive_stored, timeout=20, what="the passive's journey")
    p = (await http.get("/v1/customers/p", headers=till)).json()
    assert p["current_band"] == "passive" and p["next_visit"]["surprise_and_delight"] is True
    assert p["next_visit"]["actions"][0]["action"] == "surprise_and_delight"
    first = await http.post("/v1/customers/p/visits", json={"visit_id": "till-7:42"}, headers=till)
    again = await http.post("/v1/customers/p/visits", json={"visit_id": "till-7:42"}, headers=till)
    later = await http.post("/v1/customers/p/visits", json={}, headers=till)
    assert (first.json()["cleared_surprise"], again.json()["status"], later.json()["cleared_surprise"]) == (
        True,
        "duplicate",
        False,
    )
    outside = await http.post("/v1/customers/p/visits", json={"store_id": "hamburg-2"}, headers=till)
    assert outside.status_code == 403
    assert (await http.get("/v1/customers/nobody", headers=till)).status_code == 404
    assert (await http.get("/v1/customers/p", headers=await key(mem_loop, "globex", Role.ADMIN))).status_code == 404

    cid = (await http.get("/v1/cases", headers=admin)).json()["cases"][0]["case_id"]
    await http.post(f"/v1/cases/{cid}/contacts", json={}, headers=admin)
    await http.post(f"/v1/cases/{cid}/resolve", json={"root_cause": "staff", "outcome": "recovered"}, headers=admin)
    figures = (await http.get("/v1/closed-loop", headers=admin)).json()
    assert (figures["cases"], figures["contacted"], figures["resolved"]) == (1, 1, 1)
    assert figures["detractors_contacted_within_sla"] == 1 and figures["contacted_within_sla_share"] == 1.0
    assert figures["time_to_first_contact_hours"]["median"] is not None
    assert (figures["passives"], figures["passives_asked"], figures["passives_asked_share"]) == (1, 1, 1.0)
    assert figures["recovery_rate"] == 0.0
    await post_and_wait(http, admin, [body(10, customer_id="j")], 1)

    async def recovered() -> bool:
        return (await http.get("/v1/closed-loop", headers=admin)).json()["detractors_recovered"] == 1

    await eventually(recovered, timeout=20, what="the detractor's recovery")
    assert (await http.get("/v1/closed-loop", params={"week": "2027-W53"}, headers=admin)).status_code == 422
    assert (await http.get("/v1/closed-loop", params={"week": "2020-W01"}, headers=admin)).json()["cases"] == 0
    assert (await http.get("/v1/closed-loop", headers=till)).status_code == 403  # a till key reads no figures
    berlin = await key(mem_loop, "acme", Role.MANAGER, ["berlin-1"])
    assert (await http.get("/v1/closed-loop", params={"store_id": "hamburg-2"}, headers=berlin)).status_code == 404
    assert (await http.get("/v1/closed-loop", params={"store_id": "berlin-1"}, headers=berlin)).json()["cases"] == 1
