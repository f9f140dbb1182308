"""PATCH /v1/feedback/{event_id}: a late comment becomes one feedback.updated.v1 on the answer's own
key, on the in-memory bus and on real Kafka, with real PostgreSQL. Repeats publish once; unknown,
foreign and out-of-store answers are 404; fields that cannot change are 422; a broker outage is a 503
that publishes nothing and whose retry publishes once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from npsloop.loop import Loop
from npsloop_platform.access import Role
from npsloop_platform.testing.helpers import bearer, feedback_body, read_all
from npsloop_schemas import FeedbackReceivedV1, FeedbackUpdatedV1, Topics, parse_event

from .test_ingest_idempotency import FlakyBus


def body(score: int = 5, **extra: Any) -> dict[str, Any]:
    return {k: v for k, v in feedback_body(score, **extra).items() if k != "tenant_id"}


async def on_topic(loop: Loop) -> list[tuple[str, Any]]:
    msgs = await read_all(loop.bus, Topics.FEEDBACK_RECEIVED)
    return [((m.key or b"").decode(), parse_event(m.value or b"")) for m in msgs]


async def test_a_late_comment_is_published_once_on_the_answers_key(loop: Loop, client: httpx.AsyncClient) -> None:
    eid = str(uuid.uuid4())
    assert (await client.post("/v1/feedback", json=body(7, event_id=eid, customer_id="c-77"))).status_code == 202
    first = await client.patch(f"/v1/feedback/{eid}", json={"comment": "Queue was endless, staff lovely"})
    again = await client.patch(f"/v1/feedback/{eid}", json={"comment": "Queue was endless, staff lovely"})
    other = await client.patch(f"/v1/feedback/{eid}", json={"locale": "de-DE", "consent_to_contact": False})
    assert first.status_code == 202, first.text
    assert first.json()["feedback_event_id"] == eid and first.json()["fields"] == ["comment"]
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert again.json()["event_id"] == first.json()["event_id"]
    assert other.status_code == 202 and other.json()["event_id"] != first.json()["event_id"]
    assert "RateLimit-Remaining" in first.headers

    events = await on_topic(loop)
    assert [type(e) for _, e in events] == [FeedbackReceivedV1, FeedbackUpdatedV1, FeedbackUpdatedV1]
    keys = {k for k, _ in events}
    assert keys == {"acme:c-77"}  # ordered behind the answer it changes
    update = events[1][1]
    assert update.payload.feedback_event_id == uuid.UUID(eid) and update.payload.comment.startswith("Queue")
    assert update.correlation_id == uuid.UUID(eid) == update.causation_id
    assert sorted(events[2][1].payload.fields) == ["consent_to_contact", "locale"]
    assert events[2][1].payload.comment is None  # not sent, not changed


async def test_unknown_foreign_and_out_of_store_answers_are_404(loop: Loop, client: httpx.AsyncClient) -> None:
    eid = str(uuid.uuid4())
    assert (await client.post("/v1/feedback", json=body(3, event_id=eid, store_id="berlin-1"))).status_code == 202
    unknown = await client.patch(f"/v1/feedback/{uuid.uuid4()}", json={"comment": "x"})
    globex, _ = await loop.keys.create("globex", Role.SOURCE, None, actor="test")
    foreign = await client.patch(f"/v1/feedback/{eid}", json={"comment": "x"}, headers=bearer(globex))
    hamburg, _ = await loop.keys.create("acme", Role.SOURCE, ["hamburg-1"], actor="test")
    other_store = await client.patch(f"/v1/feedback/{eid}", json={"comment": "x"}, headers=bearer(hamburg))
    manager, _ = await loop.keys.create("acme", Role.MANAGER, None, actor="test")
    wrong_role = await client.patch(f"/v1/feedback/{eid}", json={"comment": "x"}, headers=bearer(manager))
    assert [unknown.status_code, foreign.status_code, other_store.status_code] == [404, 404, 404]
    assert unknown.json() == foreign.json() == other_store.json()  # nothing tells them apart
    assert wrong_role.status_code == 403
    not_a_uuid = await client.patch("/v1/feedback/not-a-uuid", json={"comment": "x"})
    assert not_a_uuid.status_code == 422 and not_a_uuid.json()["detail"][0]["loc"] == ["path", "event_id"]
    assert len(await on_topic(loop)) == 1  # only the answer


async def test_what_cannot_change_is_refused_with_the_field(loop: Loop, client: httpx.AsyncClient) -> None:
    eid = str(uuid.uuid4())
    assert (await client.post("/v1/feedback", json=body(9, event_id=eid))).status_code == 202
    cases = {
        "empty": ({}, None),
        "score": ({"score": 3}, ["body", "score"]),
        "store": ({"store_id": "x"}, ["body", "store_id"]),
        "NUL": ({"comment": "a\x00b"}, ["body", "comment"]),
        "contact key": ({"contact": {"mail": "a@b.co"}}, ["body", "contact", "mail"]),
        "null consent": ({"consent_to_contact": None}, None),
        "array": ([{"comment": "x"}], None),
        "too long": ({"comment": "x" * 5001}, ["body", "comment"]),
    }
    for name, (patch, loc) in cases.items():
        r = await client.patch(f"/v1/feedback/{eid}", json=patch)
        assert r.status_code == 422, (name, r.text)
        if loc is not None:
            assert r.json()["detail"][0]["loc"] == loc, (name, r.text)
    dup = await client.patch(
        f"/v1/feedback/{eid}", content=b'{"comment": "a", "comment": "b"}', headers={"Content-Type": "application/json"}
    )
    assert dup.status_code == 422
    assert len(await on_topic(loop)) == 1


async def test_a_broker_outage_is_503_and_the_retry_publishes_once(database_url: str) -> None:
    bus = FlakyBus()
    await bus.start()
    loop = Loop(bus, database_url, log_json=False, publish_timeout_s=1.0)
    await loop.start()
    try:
        key, _ = await loop.keys.create("acme", Role.SOURCE, None, actor="test")
        app = loop.app(manage_bus=False, manage_components=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as http:
            eid = str(uuid.uuid4())
            assert (await http.post("/v1/feedback", json=body(2, event_id=eid), headers=bearer(key))).status_code == 202
            bus.down = True
            down = await http.patch(f"/v1/feedback/{eid}", json={"comment": "late"}, headers=bearer(key))
            assert down.status_code == 503 and "Retry-After" in down.headers
            bus.down = False
            retried = await http.patch(f"/v1/feedback/{eid}", json={"comment": "late"}, headers=bearer(key))
            assert retried.status_code == 202, retried.text
        updates = [m for m in bus.messages(Topics.FEEDBACK_RECEIVED) if b'"feedback.updated"' in (m.value or b"")]
        assert len(updates) == 1
    finally:
        await loop.stop()
        await bus.stop()


async def test_past_the_retention_window_an_answer_is_forgotten(loop: Loop, client: httpx.AsyncClient) -> None:
    eid = str(uuid.uuid4())
    assert (await client.post("/v1/feedback", json=body(4, event_id=eid))).status_code == 202
    store = loop.parts[0].extras["idempotency"]
    assert await store.purge(3600) == 0  # young: kept
    assert (await client.patch(f"/v1/feedback/{eid}", json={"comment": "still here"})).status_code == 202
    await asyncio.sleep(0.05)  # the background marks land
    assert await store.purge(0) >= 2  # the answer and its update
    late = await client.patch(f"/v1/feedback/{eid}", json={"comment": "too late"})
    assert late.status_code == 404
