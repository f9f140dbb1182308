"""Actions in the whole loop, once on the in-memory bus and once on real Kafka, into real PostgreSQL:
one case per customer across answers, a late comment merged into its case, a slip, a recovery, the
customer API, and a late comment on unknown feedback dead-lettered with its reason."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import text

from npsloop.loop import Loop
from npsloop_platform.testing.helpers import eventually, feedback_body, read_topic
from npsloop_schemas import (
    FeedbackReclassifiedPayloadV1,
    FeedbackReclassifiedV1,
    FeedbackUpdatedPayloadV1,
    Sentiment,
    ThemeSentiment,
    Topics,
    serialize_event,
)


async def scalar(loop: Loop, sql: str, **params: object) -> object:
    async with loop.actions_db.session() as session:
        return (await session.execute(text(sql), params)).scalar_one()


def late_comment(feedback_event_id: uuid.UUID, comment: str) -> FeedbackReclassifiedV1:
    update_id = uuid.uuid4()
    return FeedbackReclassifiedV1(
        event_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        tenant_id="acme",
        source="test",
        correlation_id=feedback_event_id,
        causation_id=update_id,
        payload=FeedbackReclassifiedPayloadV1(
            feedback_event_id=feedback_event_id,
            update_event_id=update_id,
            update=FeedbackUpdatedPayloadV1(feedback_event_id=feedback_event_id, fields=["comment"], comment=comment),
            sentiment=Sentiment(label="negative", compound=-0.7, model="test"),
            themes=["waiting_time"],
            theme_sentiments=[ThemeSentiment(theme="waiting_time", label="negative", compound=-0.7)],
        ),
    )


async def test_journeys_one_case_per_customer_and_late_comments(loop: Loop, client: httpx.AsyncClient) -> None:
    passive_id, ghost = uuid.uuid4(), uuid.uuid4()
    for body in (
        feedback_body(10, customer_id="slipper"),
        feedback_body(3, customer_id="angry", comment="Rude staff"),
        feedback_body(8, customer_id="quiet", event_id=str(passive_id)),
    ):
        assert (await client.post("/v1/feedback", json=body)).status_code == 202

    async def stored(n: int) -> bool:
        return await scalar(loop, "SELECT count(*) FROM actions.feedback") == n

    await eventually(lambda: stored(3), what="three answers stored")
    assert await scalar(loop, "SELECT count(*) FROM actions.cases") == 1
    # later answers: the detractor again (joins the open case), the promoter slips
    for body in (feedback_body(1, customer_id="angry"), feedback_body(6, customer_id="slipper")):
        assert (await client.post("/v1/feedback", json=body)).status_code == 202
    # a late comment for the passive, on the original's key, and one for feedback nobody stored
    for fid, key in ((passive_id, "acme:quiet"), (ghost, "acme:ghost")):
        event = late_comment(fid, "the queue was endless")
        await loop.bus.publish(Topics.FEEDBACK_CLASSIFIED, serialize_event(event), key=key)
    # and a version of the event nobody here knows
    future = json.loads(serialize_event(late_comment(passive_id, "v2")))
    await loop.bus.publish(
        Topics.FEEDBACK_CLASSIFIED, json.dumps(future | {"schema_version": 2}).encode(), key="acme:v2"
    )

    async def nurture_case() -> bool:
        return await scalar(loop, "SELECT count(*) FROM actions.cases WHERE kind = 'nurture'") == 1

    await eventually(nurture_case, what="the late comment to open a nurture case")
    await eventually(lambda: stored(5), what="five answers stored")
    assert await scalar(loop, "SELECT comment FROM actions.feedback WHERE feedback_event_id = :f", f=passive_id) == (
        "the queue was endless"
    )
    angry = "SELECT count(*) FROM actions.cases WHERE customer_key = 'acme:angry'"
    assert await scalar(loop, angry) == 1
    assert (
        await scalar(
            loop, "SELECT count(*) FROM actions.feedback WHERE customer_key = 'acme:angry' AND case_id IS NOT NULL"
        )
        == 2
    )

    slipper = (await client.get("/v1/customers/slipper")).json()
    assert slipper["markers"]["at_risk"] is True and slipper["previous_band"] == "promoter"
    assert [h["score"] for h in slipper["history"]] == [10, 6]
    assert slipper["open_case"]["priority"] > 50  # raised: the slip
    quiet = (await client.get("/v1/customers/quiet")).json()
    assert quiet["open_case"]["kind"] == "nurture" and quiet["next_visit"]["surprise_and_delight"] is True

    dead = {m.key: m for m in await read_topic(loop.bus, Topics.dlq(Topics.FEEDBACK_CLASSIFIED, "actions"), 2)}
    assert set(dead) == {b"acme:ghost", b"acme:v2"}
    assert b"unknown feedback" in (dead[b"acme:ghost"].header("npsloop-dlq-reason") or b"")
    assert b"schema_version" in (dead[b"acme:v2"].header("npsloop-dlq-reason") or b"")

    # a recovery: the former detractor answers 10
    assert (await client.post("/v1/feedback", json=feedback_body(10, customer_id="angry"))).status_code == 202

    async def recovered() -> bool:
        r = (await client.get("/v1/customers/angry")).json()
        return bool(r.get("markers", {}).get("recovered"))

    await eventually(recovered, what="the recovery")
    figures = (await client.get("/v1/closed-loop")).json()
    assert figures["detractors_recovered"] == 1 and figures["passives"] == 1
