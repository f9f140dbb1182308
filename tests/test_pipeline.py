"""The whole loop, once on the in-memory bus and once on real Kafka, into real PostgreSQL."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import text

from npsloop.loop import Loop
from npsloop_platform.testing.helpers import eventually, feedback_body, read_topic
from npsloop_platform.testing.servers import HttpSink, SmtpSink
from npsloop_schemas import Topics


async def scalar(loop: Loop, sql: str) -> object:
    async with loop.actions_db.session() as session:
        return (await session.execute(text(sql))).scalar_one()


async def test_three_feedbacks_close_the_loop_exactly_once(
    loop: Loop, client: httpx.AsyncClient, smtp_server: SmtpSink, http_sink: HttpSink
) -> None:
    detractor_id = str(uuid.uuid4())
    bodies = [
        feedback_body(10, customer_id="c-promoter", contact={"name": "Ann", "email": "ann@example.com"}),
        feedback_body(8, customer_id="c-passive", contact={"email": "pat@example.com"}),
        feedback_body(
            2,
            customer_id="c-detractor",
            event_id=detractor_id,
            comment="Rude staff and a long queue",
            contact={"phone": "+49 151 1234567"},
        ),
    ]
    for body in bodies:
        response = await client.post("/v1/feedback", json=body)
        assert response.status_code == 202, response.text

    async def loop_closed() -> bool:
        status = await scalar(loop, "SELECT coalesce(max(status), '') FROM actions.cases")
        return len(smtp_server.messages) >= 1 and len(http_sink.requests) >= 1 and status == "contacted"

    await eventually(loop_closed, what="one email, one call task and a contacted case")

    # The producer retries the detractor with the same event_id: nothing may happen twice.
    retry = await client.post("/v1/feedback", json=bodies[2])
    assert retry.status_code == 200 and retry.json()["status"] == "duplicate"
    # ...and a copy that reached the topic anyway (a producer that wrote to Kafka itself) changes nothing.
    handled_before = loop.consumers["actions"].stats.handled
    published = await read_topic(loop.bus, Topics.FEEDBACK_RECEIVED, 3)
    assert len(published) == 3  # the retry was not published again
    copy = next(m for m in published if detractor_id.encode() in (m.value or b""))
    await loop.bus.publish(Topics.FEEDBACK_RECEIVED, copy.value or b"", key=copy.key)

    async def duplicate_consumed() -> bool:
        return loop.consumers["actions"].stats.handled > handled_before

    await eventually(duplicate_consumed, what="the copy to reach actions")

    assert await scalar(loop, "SELECT count(*) FROM actions.feedback") == 3
    assert await scalar(loop, "SELECT count(*) FROM actions.cases") == 1
    assert await scalar(loop, "SELECT segment FROM actions.cases") == "detractor"
    assert await scalar(loop, "SELECT count(*) FROM actions.outbox WHERE published_at IS NULL") == 0

    thanks = [m for m in smtp_server.messages if m["To"] == "ann@example.com"]  # the passive may be asked, too
    assert len(thanks) == 1
    mail = thanks[0]
    text_part = mail.get_payload()[0].get_payload(decode=True).decode()  # multipart: text, then HTML
    assert "10/10" in text_part and mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    assert len(http_sink.requests) == 1
    task = http_sink.requests[0]["json"]
    assert task["score"] == 2
    assert task["contact"]["phone"] == "+49 151 1234567"
    assert task["comment"] == "Rude staff and a long queue"
    assert http_sink.requests[0]["headers"]["Idempotency-Key"] == task["delivery_id"]

    timeline = await scalar(loop, "SELECT string_agg(entry, ',' ORDER BY id) FROM actions.case_timeline")
    assert timeline == "opened,delivery_sent"


async def test_nps_endpoint_reports_margin_of_error(loop: Loop, client: httpx.AsyncClient) -> None:
    for score in (10, 9, 7, 3):
        assert (await client.post("/v1/feedback", json=feedback_body(score))).status_code == 202

    async def stored() -> bool:
        return await scalar(loop, "SELECT count(*) FROM actions.feedback") == 4

    await eventually(stored, what="four feedbacks stored")
    nps = (await client.get("/v1/nps", params={"tenant_id": "acme"})).json()
    assert nps["n"] == 4 and nps["nps"] == 25.0
    assert nps["small_sample"] is True
    assert nps["margin_of_error"] > 50
