"""The Monday digest: due at 08:00 in each store's time zone, sent over real SMTP exactly once per
store and week across replicas and restarts, retried after a failed send; and its content."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text

from npsloop_platform.db import Database
from npsloop_platform.stores import StoreDirectory
from npsloop_platform.testing.servers import SmtpSink, free_port
from npsloop_reporting.config import ReportingSettings
from npsloop_reporting.digest import build_digest, render_html
from npsloop_reporting.figures import Scope
from npsloop_reporting.mailer import SmtpMailer
from npsloop_reporting.periods import Period, PeriodKind, parse_week
from npsloop_reporting.samples import classified, fold_into, opened, updated
from npsloop_reporting.scheduler import DigestScheduler, due_digests, due_week

BERLIN = ZoneInfo("Europe/Berlin")
W47 = Period.containing(PeriodKind.WEEK, parse_week("2026-W47"))
MON_W48_0800_BERLIN = datetime(2026, 11, 23, 8, tzinfo=BERLIN)


def test_due_at_monday_0800_in_each_stores_time_zone(stores: StoreDirectory) -> None:
    before = MON_W48_0800_BERLIN - timedelta(minutes=1)
    assert due_week(before, BERLIN, 8) is None
    assert due_week(MON_W48_0800_BERLIN, BERLIN, 8) == W47
    assert due_week(MON_W48_0800_BERLIN + timedelta(days=3), BERLIN, 8) == W47  # started late: still W47, once
    # Monday 07:59 in Berlin is 15:59 in Tokyo: Tokyo's digest and its region's are due, Berlin's not yet
    assert [d.scope for d in due_digests(stores, before, 8)] == ["tokyo-1"]  # asia has no recipients
    due = {d.scope: d for d in due_digests(stores, MON_W48_0800_BERLIN, 8)}
    assert set(due) == {"berlin-1", "tokyo-1", "region:north"}  # hamburg-2 and asia have no recipients
    assert due["berlin-1"].recipients == ["berlin-1@example.com", "staff@example.com"]
    assert due["region:north"].region == "north" and due["berlin-1"].week == W47


async def seed(db: Database, stores: StoreDirectory) -> None:
    at = datetime(2026, 11, 18, 10, tzinfo=UTC)
    d = classified(at, 1, customer="d", comment="Queue too long")
    case = opened(d, at, sla_due_at=at + timedelta(hours=24))
    events = [
        classified(
            at,
            10,
            comment="Lovely staff, mail me at ann.smith@example.com",
            customer="a",
            themes=[("staff", "positive", 0.8)],
        ),
        classified(at, 9, comment="<script>alert('x')</script> great coffee", customer="b"),
        classified(at, 10, comment="Fast checkout", customer="c"),
        classified(at, 10, comment="Best store in town", customer="e"),
        d,
        case,
        updated(case, at + timedelta(hours=3), "contacted", "contacted"),
        classified(at - timedelta(days=7), 3, customer="f", comment="slow", themes=[("queue", "negative", -0.5)]),
    ]
    await fold_into(db, stores, events)


async def test_content_of_a_digest(db: Database, stores: StoreDirectory) -> None:
    await seed(db, stores)
    async with db.session() as s:
        digest = await build_digest(s, Scope("acme", store_id="berlin-1"), "Berlin Mitte", W47, MON_W48_0800_BERLIN)
    page = render_html(digest)
    assert digest.current.n == 5 and len(digest.trend) == 13
    assert "NPS <b>+60 (too few answers for a margin: n=5 &lt; 30)</b>" in page
    assert [s["score"] for s in digest.stories] == [10, 10, 10]  # three promoter stories
    assert "a***@example.com" in page and "ann.smith@example.com" not in page  # PII masked
    assert "<script>" not in page
    assert {t["theme"]: t["change"] for t in digest.movers} == {"staff": 1, "queue": -1}
    assert "Time to first contact: p50 3.0 h" in page and "1 detractor cases, 0 of them recovered" in page
    assert "Open now: 1, of them overdue (not contacted within their SLA): 0" in page  # contacted in time
    async with db.session() as s:
        empty = await build_digest(s, Scope("acme", store_id="tokyo-1"), "Tokyo", W47, MON_W48_0800_BERLIN)
    assert "No answers this week." in render_html(empty)


async def test_sent_exactly_once_across_replicas_and_restarts(
    db: Database, stores: StoreDirectory, smtp_server: SmtpSink, database_url: str, stores_file: Path
) -> None:
    await seed(db, stores)
    now = [MON_W48_0800_BERLIN - timedelta(minutes=1)]
    settings = ReportingSettings(
        database_url=database_url, smtp_host=smtp_server.host, smtp_port=smtp_server.port, stores_file=str(stores_file)
    )
    replicas = [DigestScheduler(settings, db, stores, SmtpMailer(settings), clock=lambda: now[0]) for _ in range(3)]
    assert sum(await asyncio.gather(*(r.tick() for r in replicas))) == 1  # only Tokyo's, at 15:59 there
    now[0] = MON_W48_0800_BERLIN
    sent = await asyncio.gather(*(r.tick() for r in replicas))
    assert sum(sent) == 2  # berlin-1 and the north roll-up, each by one replica
    restarted = DigestScheduler(settings, db, stores, SmtpMailer(settings), clock=lambda: now[0])
    now[0] = MON_W48_0800_BERLIN + timedelta(days=2)
    assert await restarted.tick() == 0
    to = sorted(m["To"] for m in smtp_server.messages)
    assert to == ["berlin-1@example.com, staff@example.com", "north@example.com", "tokyo@example.com"]
    berlin = next(m for m in smtp_server.messages if "berlin-1" in m["To"])
    assert berlin["Subject"] == "berlin-1: NPS week 2026-W47"
    html_part = next(p for p in berlin.walk() if p.get_content_type() == "text/html")
    assert "13-week trend" in html_part.get_payload(decode=True).decode()
    async with db.session() as s:
        rows = (await s.execute(text("SELECT scope, week, status, attempts FROM reporting.digests ORDER BY 1"))).all()
    assert [tuple(r) for r in rows] == [
        ("berlin-1", "2026-W47", "sent", 1),
        ("region:north", "2026-W47", "sent", 1),
        ("tokyo-1", "2026-W47", "sent", 1),
    ]


async def test_a_failed_send_is_retried_and_then_sent_once(
    db: Database, stores: StoreDirectory, smtp_server: SmtpSink, database_url: str, stores_file: Path
) -> None:
    now = MON_W48_0800_BERLIN
    down = ReportingSettings(database_url=database_url, smtp_port=free_port(), smtp_timeout_s=2)
    up = ReportingSettings(database_url=database_url, smtp_host=smtp_server.host, smtp_port=smtp_server.port)
    assert await DigestScheduler(down, db, stores, SmtpMailer(down), clock=lambda: now).tick() == 0
    async with db.session() as s:
        failed = (await s.execute(text("SELECT count(*) FROM reporting.digests WHERE status = 'failed'"))).scalar()
    assert failed == 3 and smtp_server.messages == []
    assert await DigestScheduler(up, db, stores, SmtpMailer(up), clock=lambda: now).tick() == 3
    assert await DigestScheduler(up, db, stores, SmtpMailer(up), clock=lambda: now).tick() == 0
    assert len(smtp_server.messages) == 3
