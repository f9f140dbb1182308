"""The bulk SQL of the actions repository against real PostgreSQL: one transaction per batch."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from npsloop_actions.handlers import handle_classified, handle_status
from npsloop_actions.models import SCHEMA
from npsloop_actions.repository import SqlActionsRepository
from npsloop_platform.db import Database, migrate
from npsloop_platform.uow import SqlUnitOfWork
from npsloop_schemas import DeliveryStatus, parse_event

from .test_handlers import classified, keyed, status_for

MIGRATIONS = Path(__file__).parents[1] / "src" / "npsloop_actions" / "migrations"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    await migrate(database_url, MIGRATIONS, SCHEMA)
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.stop()


async def run_batch(db: Database, handle: Any, items: Any, commit: bool = True) -> None:
    """One batch in one unit of work, as the consumer edge runs it (rolled back without commit)."""
    async with SqlUnitOfWork(db) as uow:
        repo = SqlActionsRepository(uow.session)
        await handle(items, repo, "actions")
        await repo.flush()
        if commit:
            await uow.commit()


async def scalar(db: Database, sql: str) -> object:
    async with db.session() as session:
        return (await session.execute(text(sql))).scalar_one()


async def test_a_batch_writes_in_bulk_and_keeps_outbox_order(db: Database) -> None:
    events = [classified(s, email="a@b.co", customer=f"c-{i}") for i, s in enumerate([10, 2, 8, 0, 9] * 40)]
    batch = keyed(*events) + keyed(events[1])  # a repeat inside the batch
    await run_batch(db, handle_classified, batch)
    assert await scalar(db, "SELECT count(*) FROM actions.inbox") == 200
    assert await scalar(db, "SELECT count(*) FROM actions.feedback") == 200
    assert await scalar(db, "SELECT count(*) FROM actions.cases") == 80
    assert await scalar(db, "SELECT count(*) FROM actions.case_timeline WHERE entry = 'opened'") == 80
    async with db.session() as session:
        values = (await session.execute(text("SELECT value FROM actions.outbox ORDER BY id"))).scalars().all()
    kinds = [parse_event(v).type_tag for v in values]
    assert kinds[:4] == ["notification.requested.v1", "case.opened.v1", "notification.requested.v1", "case.opened.v1"]
    assert len(kinds) == 80 * 2 + 80  # two per detractor, a thank-you per promoter with an email

    # The same batch again (a redelivery after a crash before the offset commit): nothing new.
    await run_batch(db, handle_classified, batch)
    assert await scalar(db, "SELECT count(*) FROM actions.outbox") == 240


async def test_status_changes_in_bulk_and_a_rolled_back_batch_leaves_nothing(db: Database) -> None:
    detractor = classified(1, customer="c-1")
    await run_batch(db, handle_classified, keyed(detractor))
    case_id = uuid.UUID(str(await scalar(db, "SELECT case_id FROM actions.cases")))
    statuses = [(status_for(case_id, DeliveryStatus.SENT), "acme:c-1"), (status_for(uuid.uuid4()), "acme:c-2")]
    await run_batch(db, handle_status, statuses, commit=False)  # the unit of work rolls back on exit
    assert await scalar(db, "SELECT status FROM actions.cases") == "open"
    assert await scalar(db, "SELECT count(*) FROM actions.inbox") == 1
    await run_batch(db, handle_status, statuses)
    assert await scalar(db, "SELECT status FROM actions.cases") == "contacted"
    entries = "SELECT string_agg(entry, ',' ORDER BY id) FROM actions.case_timeline"
    assert await scalar(db, entries) == "opened,delivery_sent"
