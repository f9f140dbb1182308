"""The SLA monitor with a controllable clock: warning at 75%, breach at 100%, the escalation ladder,
idempotent passes, one runner at a time, and a changed SLA applied to cases that already exist."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from npsloop_actions.handlers import Context
from npsloop_actions.policy import DEFAULT_POLICY, parse_policy
from npsloop_actions.sla import SlaMonitor
from npsloop_actions.testing import (  # noqa: F401 (fixtures)
    Clock,
    classified,
    clock_fixture,
    db_fixture,
    keyed,
    kinds,
    outbox,
    run_batch,
    scalar,
)
from npsloop_platform.db import Database
from npsloop_platform.stores import StoreDirectory, load_stores
from npsloop_schemas import CaseSlaBreachedV1, CaseSlaWarningV1

STORES = """
[regions.north]
manager_email = "north@example.com"

[stores."acme/berlin-1"]
region = "north"
time_zone = "Europe/Berlin"
country = "DE"
subdivision = "BE"
manager_email = "berlin-1@example.com"
"""


def directory(tmp_path: Path) -> StoreDirectory:
    path = tmp_path / "stores.toml"
    path.write_text(STORES)
    return load_stores(path)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


async def test_warning_breach_and_escalation_along_the_ladder(db: Database, clock: Clock, tmp_path: Path) -> None:
    ctx = Context(parse_policy(DEFAULT_POLICY.read_text()), directory(tmp_path), "actions", clock)
    await run_batch(db, keyed(classified(2, customer="late"), classified(2, customer="called")), ctx)
    # Mon 09:00 UTC = 10:00 Berlin; 48 business hours -> Wed 10:00 Berlin; 75% (36 h) -> Tue 22:00 Berlin
    assert await scalar(db, "SELECT min(sla_due_at) FROM actions.cases") == at(25, 9)
    assert await scalar(db, "SELECT min(sla_warn_at) FROM actions.cases") == at(24, 21)
    await db_exec(
        db,
        "UPDATE actions.cases SET status = 'contacted', first_contacted_at = now() WHERE customer_key = 'acme:called'",
    )
    monitor = SlaMonitor(db, ctx, None)

    clock.now = at(24, 20, 59)
    assert (await monitor.run_once()).warnings == 0
    clock.now = at(24, 21)
    assert (await monitor.run_once()).warnings == 1
    assert (await monitor.run_once()).warnings == 0  # idempotent
    clock.now = at(25, 9)
    r = await monitor.run_once()
    assert (r.breaches, r.escalations) == (1, 0)
    clock.now = at(26, 8, 59)  # the next step comes 24 business hours after the breach
    assert (await monitor.run_once()).escalations == 0
    clock.now = at(26, 9)
    assert (await monitor.run_once()).escalations == 1
    clock.now = at(30, 9)
    r = await monitor.run_once()
    assert (r.warnings, r.breaches, r.escalations) == (0, 0, 0)  # the ladder has two steps

    events = await outbox(db)
    sla = [e for e in events if isinstance(e, CaseSlaWarningV1 | CaseSlaBreachedV1)]
    assert [(e.event_type, e.payload.escalation_level, e.payload.escalated_to) for e in sla] == [
        ("case.sla_warning", 0, []),
        ("case.sla_breached", 1, ["berlin-1@example.com"]),
        ("case.sla_breached", 2, ["north@example.com"]),
    ]
    assert all(e.payload.customer_key == "acme:late" and e.payload.store_id == "berlin-1" for e in sla)
    assert kinds(events).count("case.updated:escalated") == 2
    assert await scalar(db, "SELECT escalation_level FROM actions.cases WHERE customer_key = 'acme:late'") == 2
    timeline = "SELECT string_agg(entry, ',' ORDER BY id) FROM actions.case_timeline t JOIN actions.cases c USING (case_id) WHERE c.customer_key = 'acme:late'"
    assert await scalar(db, timeline) == "opened,sla_warning,sla_breached,escalated"


async def db_exec(db: Database, sql: str) -> None:
    from sqlalchemy import text

    async with db.session() as session, session.begin():
        await session.execute(text(sql))


async def test_several_replicas_run_one_pass_at_a_time_and_tell_once(db: Database, clock: Clock) -> None:
    ctx = Context(parse_policy(DEFAULT_POLICY.read_text()), source="actions", clock=clock)
    await run_batch(db, keyed(*(classified(1, customer=f"c{i}") for i in range(20))), ctx)
    clock.now = at(30, 12)  # long past due
    monitors = [SlaMonitor(db, ctx, None) for _ in range(3)]
    results = await asyncio.gather(*(m.run_once() for m in monitors for _ in range(2)))
    assert sum(r.breaches for r in results) == 20 and sum(r.warnings for r in results) == 20
    assert sum(r.escalations for r in results) == 20  # more than 24 business hours late: the region too
    got = kinds(await outbox(db))
    assert got.count("case.sla_breached:") == 40 and got.count("case.sla_warning:") == 20
    async with db.session() as session:
        from sqlalchemy import text

        ids = (await session.execute(text("SELECT count(DISTINCT event_id), count(*) FROM actions.outbox"))).one()
    assert ids[0] == ids[1]


async def test_a_changed_sla_applies_to_cases_that_already_exist(db: Database, clock: Clock) -> None:
    old = Context(parse_policy(DEFAULT_POLICY.read_text()), source="actions", clock=clock)
    await run_batch(db, keyed(classified(1)), old)
    assert await scalar(db, "SELECT sla_due_at FROM actions.cases") == at(25, 9)
    new = Context(
        parse_policy(DEFAULT_POLICY.read_text().replace("callback_hours = 48", "callback_hours = 24")),
        source="actions",
        clock=clock,
    )
    clock.now = at(24, 9, 30)
    r = await SlaMonitor(db, new, None).run_once()
    assert r.reapplied == 1 and r.breaches == 1  # due Tue 09:00 now: already breached
    assert await scalar(db, "SELECT sla_due_at FROM actions.cases") == at(24, 9)
    assert (await SlaMonitor(db, new, None).run_once()).reapplied == 0
