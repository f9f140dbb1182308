"""GET /metrics: HTTP requests by route template and status, and what the consume loop did (batch
sizes, handler latency, lag, events handled, dead letters), on the memory bus and on real Kafka."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import httpx
from prometheus_client.parser import text_string_to_metric_families

from npsloop_platform.app import AppState, create_app
from npsloop_platform.bus import Bus
from npsloop_platform.consumer import EventConsumer
from npsloop_platform.settings import PlatformSettings
from npsloop_platform.testing.helpers import eventually, feedback_event_json
from npsloop_platform.uow import Received, UnitOfWork
from npsloop_schemas import FeedbackReceivedV1, Topics


def samples(text: str, name: str, **labels: str) -> list[float]:
    return [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


async def test_metrics_count_requests_batches_events_and_dead_letters(bus: Bus) -> None:
    group = f"m{uuid.uuid4().hex[:8]}"
    for score in (1, 5, 9, 10):
        await bus.publish(Topics.FEEDBACK_RECEIVED, feedback_event_json(score), key="k")
    await bus.publish(Topics.FEEDBACK_RECEIVED, b"{not json", key="k")

    async def handle(items: Sequence[Received[FeedbackReceivedV1]], uow: UnitOfWork) -> None:
        return None

    consumer = EventConsumer(bus, group, {FeedbackReceivedV1: handle}, retry_initial_s=0.01)
    app = create_app("t", [bus, consumer], [], AppState(bus=bus, settings=PlatformSettings(_env_file=None)))  # type: ignore[call-arg]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:

            async def done() -> bool:
                return consumer.stats.handled == 4 and consumer.stats.dead_lettered == 1

            await eventually(done, timeout=60, what="4 handled, 1 dead-lettered")
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/no/such/page")).status_code == 404
            r = await http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert samples(text, "npsloop_consumer_events_total", group=group, event_type="feedback.received.v1") == [4.0]
    assert samples(text, "npsloop_dead_lettered_total", group=group, topic=Topics.FEEDBACK_RECEIVED) == [1.0]
    assert sum(samples(text, "npsloop_consumer_batch_size_sum", group=group)) == 5.0  # every message, poison too
    assert samples(text, "npsloop_consumer_handler_seconds_count", group=group)[0] >= 1
    lag = samples(text, "npsloop_consumer_lag", group=group, topic=Topics.FEEDBACK_RECEIVED)
    assert lag and all(v == 0 for v in lag)  # all read
    assert samples(text, "npsloop_http_requests_total", method="GET", route="/healthz", status="200")[0] >= 1
    assert samples(text, "npsloop_http_requests_total", method="GET", route="<unmatched>", status="404")[0] >= 1
    assert samples(text, "npsloop_http_request_duration_seconds_count", method="GET", route="/healthz")[0] >= 1


async def test_outbox_depth_and_age_are_measured_at_scrape_time(database_url: str) -> None:
    from prometheus_client import generate_latest
    from sqlalchemy import BigInteger, Column, DateTime, LargeBinary, MetaData, String, Table, func, insert

    from npsloop_platform.bus import MemoryBus
    from npsloop_platform.db import Database
    from npsloop_platform.outbox import OutboxRelay

    table = Table(
        f"outbox_{uuid.uuid4().hex[:8]}",
        MetaData(),
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("topic", String(255)),
        Column("key", String(255)),
        Column("value", LargeBinary),
        Column("created_at", DateTime(timezone=True), server_default=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 90)),
        Column("published_at", DateTime(timezone=True)),
    )
    db = Database(database_url, pool_size=2)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(insert(table), [{"topic": "t.v1", "key": "k", "value": b"x"}] * 3)
        bus = MemoryBus()
        await bus.start()
        relay = OutboxRelay(db, bus, table)
        await relay.scrape()
        text = generate_latest().decode()
        assert samples(text, "npsloop_outbox_depth", table=table.fullname) == [3.0]
        assert samples(text, "npsloop_outbox_oldest_unpublished_seconds", table=table.fullname)[0] >= 89
        assert await relay.relay_once() == 3
        await relay.scrape()
        text = generate_latest().decode()
        assert samples(text, "npsloop_outbox_depth", table=table.fullname) == [0.0]
        assert samples(text, "npsloop_outbox_oldest_unpublished_seconds", table=table.fullname) == [0.0]
        assert samples(text, "npsloop_outbox_published_total", table=table.fullname) == [3.0]
    finally:
        await db.stop()
