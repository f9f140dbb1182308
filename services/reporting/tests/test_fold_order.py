"""The fold gives the same tables whatever order events of different topics arrive in (no order
holds across topics), and a late comment that arrives before its answer is kept until it lands."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from npsloop_platform.db import Database
from npsloop_platform.stores import StoreDirectory
from npsloop_reporting.board import to_csv
from npsloop_reporting.samples import classified, closed, fold_into, opened, reclassified, status, updated

AT = datetime(2026, 11, 18, 10, tzinfo=UTC)


def journey() -> list[Any]:
    d = classified(AT, 1, customer="d", comment="Call me: +49 151 1234567", themes=[("queue", "negative", -0.5)])
    case = opened(d, AT + timedelta(minutes=1), sla_due_at=AT + timedelta(hours=24), priority=90)
    return [
        d,
        case,
        updated(case, AT + timedelta(hours=1), "assigned", "open", priority=95),
        updated(case, AT + timedelta(hours=2), "contacted", "contacted"),
        updated(case, AT + timedelta(hours=3), "contacted", "contacted"),  # a second contact: the first counts
        updated(case, AT + timedelta(hours=5), "resolved", "resolved", root_cause="queue"),
        updated(case, AT + timedelta(hours=6), "reopened", "open"),
        closed(case, AT + timedelta(hours=9), root_cause="understaffed till", outcome="recovered"),
        status(d, AT + timedelta(minutes=2), "call_task"),
        reclassified(d, AT + timedelta(minutes=4), "Staff were lovely in the end"),
    ]


async def tables(db: Database) -> list[Any]:
    async with db.session() as s:
        case = (
            await s.execute(
                text(
                    "SELECT status, priority, opened_at, sla_due_at, first_contact_at, resolved_at, closed_at, root_cause, "
                    "outcome, kind, segment, store_id FROM reporting.cases"
                )
            )
        ).all()
        resp = (
            await s.execute(text("SELECT score, band, comment, language, store_id, region FROM reporting.responses"))
        ).all()
        themes = (await s.execute(text("SELECT theme, sentiment FROM reporting.response_themes"))).all()
        pending = (await s.execute(text("SELECT count(*) FROM reporting.pending_texts"))).scalar()
    return [[tuple(r) for r in case], [tuple(r) for r in resp], sorted(tuple(r) for r in themes), pending]


async def test_any_order_of_batches_gives_the_same_tables(database_url: str, stores: StoreDirectory) -> None:
    from npsloop_platform.db import migrate
    from npsloop_reporting.consumer import MIGRATIONS
    from npsloop_reporting.models import SCHEMA

    results = []
    for seed in (None, 1, 2, 3):
        name = f"order{seed}"
        async with _fresh(database_url, name) as url:
            await migrate(url, MIGRATIONS, SCHEMA)
            db = Database(url, pool_size=1)
            try:
                events = journey()
                if seed is not None:
                    random.Random(seed).shuffle(events)
                for e in events:  # each event its own batch: the worst case for ordering
                    await fold_into(db, stores, [e])
                await fold_into(db, stores, events[:4])  # redelivered: folds nothing
                results.append(await tables(db))
            finally:
                await db.stop()
    first = results[0]
    for r in results[1:]:
        assert r == first
    (case,), (resp,), themes, pending = first
    assert case[0] == "closed" and case[1] == 95
    assert case[4] - case[2] == timedelta(hours=1, minutes=59)  # the first contact, not the second
    assert case[5] == AT + timedelta(hours=5) and case[6] == AT + timedelta(hours=9)
    assert case[7:12] == ("understaffed till", "recovered", "callback", "detractor", "berlin-1")
    assert resp == (1, "detractor", "Staff were lovely in the end", "de", "berlin-1", "north")
    assert themes == [("staff", "positive")] and pending == 0


def test_csv_export_neutralises_formulas() -> None:
    out = to_csv(
        [{"comment": '=HYPERLINK("http://x")', "n": -5, "store": "@evil"}, {"comment": "ok", "n": 3, "store": "+1"}]
    )
    lines = out.splitlines()
    assert lines[0] == "comment,n,store"
    assert lines[1] == '"\'=HYPERLINK(""http://x"")",-5,\'@evil' and lines[2] == "ok,3,+1"


def _fresh(server: str, _name: str) -> Any:
    from npsloop_platform.testing.infra import fresh_database

    return fresh_database(server)
