"""The reporting consumer on the in-memory bus and on real Kafka, into real PostgreSQL: every
event type folds, redelivery folds nothing twice, a poison message is dead-lettered alone, a late
comment replaces the text, and a rebuild from the earliest offsets gives the same tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from npsloop_platform.bus import Bus
from npsloop_platform.db import Database
from npsloop_platform.stores import load_stores
from npsloop_platform.testing.helpers import eventually, read_topic
from npsloop_reporting.config import ReportingSettings
from npsloop_reporting.figures import Scope, nps_series
from npsloop_reporting.kpis import weekly_kpis
from npsloop_reporting.main import build
from npsloop_reporting.periods import Period, PeriodKind, parse_week
from npsloop_reporting.rebuild import rebuild
from npsloop_reporting.samples import classified, closed, customer_key_of, opened, reclassified, status, updated
from npsloop_schemas import (
    Topics,
    serialize_event,
    topic_for,
)

MON = datetime(2026, 11, 16, 9, tzinfo=UTC)  # Monday of 2026-W47
W47 = Period.containing(PeriodKind.WEEK, parse_week("2026-W47"))


def the_week() -> list[Any]:
    """A week of berlin-1: 3 promoters, 1 passive (asked), 2 detractors with cases."""
    p = [classified(MON + timedelta(hours=i), 10, customer=f"p{i}") for i in range(3)]
    passive = classified(MON, 7, customer="pa", comment="ok")
    d1 = classified(
        MON, 2, customer="d1", comment="Rude, call me on +49 151 1234567", themes=[("staff", "negative", -0.7)]
    )
    d2 = classified(MON, 4, customer="d2")
    c1 = opened(d1, MON + timedelta(minutes=1), sla_due_at=MON + timedelta(hours=24))
    c2 = opened(d2, MON + timedelta(minutes=1), sla_due_at=MON + timedelta(hours=24))
    back = classified(MON + timedelta(days=3), 9, customer="d1")  # d1 came back as a promoter: recovered
    return [
        *p,
        passive,
        d1,
        d2,
        c1,
        c2,
        updated(c1, MON + timedelta(hours=2), "contacted", "contacted"),
        updated(c2, MON + timedelta(hours=30), "contacted", "contacted"),  # after its SLA
        closed(c1, MON + timedelta(hours=5), root_cause="staff", outcome="recovered"),
        status(passive, MON + timedelta(minutes=5), "nurture_email"),
        reclassified(d1, MON + timedelta(minutes=3), "Rude at first, then the manager was great"),
        back,
    ]


async def publish(bus: Bus, events: list[Any]) -> None:
    for e in events:
        key = getattr(e.payload, "customer_key", None) or (
            customer_key_of(e) if e.event_type == "feedback.classified" else f"acme:{e.payload.feedback_event_id}"
        )
        await bus.publish(topic_for(e), serialize_event(e), key=key)


async def snapshot(db: Database) -> dict[str, Any]:
    async with db.session() as s:
        (pt,) = await nps_series(s, Scope("acme", store_id="berlin-1"), W47, min_answers=1)
        kpis = await weekly_kpis(s, Scope("acme"), W47, W47, MON + timedelta(days=7))
        comment = (await s.execute(text("SELECT comment FROM reporting.responses WHERE score = 2"))).scalar_one()
        counts = (
            await s.execute(
                text(
                    "SELECT (SELECT count(*) FROM reporting.responses), (SELECT count(*) FROM reporting.cases), "
                    "(SELECT count(*) FROM reporting.deliveries), (SELECT string_agg(theme || ':' || sentiment, ',') "
                    "FROM reporting.response_themes)"
                )
            )
        ).one()
    return {"point": pt.as_json(), "kpis": kpis, "comment": comment, "counts": tuple(counts)}


async def test_fold_on_both_buses_and_rebuild_to_the_same_result(
    bus: Bus, database_url: str, tmp_path: Path, stores_file: Path
) -> None:
    settings = ReportingSettings(
        database_url=database_url, bus=bus.name, stores_file=str(stores_file), digest_enabled=False, log_json=False
    )
    parts = build(settings, bus)
    for c in parts.components:
        await c.start()
    consumer = parts.consumers[0]
    assert parts.db is not None
    db = parts.db
    try:
        events = the_week()
        await publish(bus, events)
        await publish(bus, events[:3])  # redelivered copies
        await bus.publish(Topics.CASE_EVENTS, b"{not json", key=b"acme:x")  # poison
        await eventually(lambda: _ready(consumer, len(events) + 3), what="every event folded", timeout=90)
        assert consumer.stats.dead_lettered == 1
        (dlq,) = await read_topic(bus, Topics.dlq(Topics.CASE_EVENTS, "reporting"), 1)
        assert dlq.header("npsloop-dlq-reason") is not None
        live = await snapshot(db)
    finally:
        for c in reversed(parts.components):
            await c.stop()

    point = live["point"]
    assert (point["n"], point["promoters"], point["passives"], point["detractors"]) == (7, 4, 1, 2)
    assert point["nps"] == round(100 * (4 - 2) / 7, 2)
    (k,) = live["kpis"]
    assert (k["detractor_cases"], k["contacted_within_sla"], k["recovered"]) == (2, 1, 1)
    assert (k["contacted_within_sla_share"], k["recovery_rate"], k["passives_asked_share"]) == (50.0, 50.0, 100.0)
    assert k["time_to_first_contact_p50_h"] == round((2 - 1 / 60 + 30 - 1 / 60) / 2, 2)
    assert k["root_causes"] == [{"root_cause": "staff", "count": 1}]
    assert live["comment"] == "Rude at first, then the manager was great"  # the late comment won
    assert live["counts"] == (7, 2, 1, "staff:positive")

    # Drop what was folded and replay from the earliest offsets: the same tables.
    db2 = Database(database_url, pool_size=2)
    seen: list[int] = []
    try:
        stats = await rebuild(
            bus,
            database_url,
            db2,
            load_stores(stores_file),
            48 * 3600,
            idle_s=3,
            progress=lambda s: seen.append(s.read),
        )
        assert stats.folded == len(events) and stats.skipped == 1 and stats.total == len(events) + 4
        assert seen and seen[-1] == stats.read
        assert await snapshot(db2) == live
    finally:
        await db2.stop()


async def _ready(consumer: Any, handled: int) -> bool:
    return consumer.stats.handled + consumer.stats.dead_lettered >= handled + 1
