"""Deliveries through the whole loop: retried with backoff, logged per attempt, dead-lettered."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from npsloop.loop import Loop
from npsloop_platform.testing.helpers import eventually, feedback_body, read_topic
from npsloop_platform.testing.servers import HttpSink
from npsloop_schemas import Topics


async def rows(loop: Loop, sql: str) -> list[tuple[object, ...]]:
    async with loop.actions_db.session() as session:
        return [tuple(r) for r in (await session.execute(text(sql))).all()]


async def test_call_center_errors_are_retried_and_each_attempt_logged(
    loop: Loop, client: httpx.AsyncClient, http_sink: HttpSink
) -> None:
    http_sink.fail_next, http_sink.fail_status = 2, 503
    assert (await client.post("/v1/feedback", json=feedback_body(0, customer_id="c-9"))).status_code == 202

    async def contacted() -> bool:
        return await rows(loop, "SELECT status FROM actions.cases") == [("contacted",)]

    await eventually(contacted, what="the case to be contacted after retries")
    assert len(http_sink.requests) == 1
    attempts = await rows(loop, "SELECT attempt, outcome FROM notifier.delivery_attempts ORDER BY attempt")
    assert attempts == [(1, "error"), (2, "error"), (3, "ok")]
    assert await rows(loop, "SELECT status, attempts FROM notifier.deliveries") == [("sent", 3)]


async def test_a_refused_call_task_is_dead_lettered_with_its_reason(
    loop: Loop, client: httpx.AsyncClient, http_sink: HttpSink
) -> None:
    http_sink.fail_next, http_sink.fail_status = 1, 400
    assert (await client.post("/v1/feedback", json=feedback_body(4, customer_id="c-8"))).status_code == 202

    dead = await read_topic(loop.bus, Topics.dlq(Topics.NOTIFICATION_REQUESTED, "notifier"), 1)
    assert len(dead) == 1
    reason = (dead[0].header("npsloop-dlq-reason") or b"").decode()
    assert "HTTP 400" in reason and "1 attempt" in reason

    async def failure_on_timeline() -> bool:
        return ("delivery_failed",) in await rows(loop, "SELECT entry FROM actions.case_timeline")

    await eventually(failure_on_timeline, what="the failed delivery on the case timeline")
    assert await rows(loop, "SELECT status FROM actions.cases") == [("open",)]
    assert await rows(loop, "SELECT status, attempts FROM notifier.deliveries") == [("failed", 1)]
    assert http_sink.requests == []
