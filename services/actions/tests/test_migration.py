"""Upgrading a database of the first release: duplicate open cases of one customer are merged into
the newest before one open case per customer holds, and existing rows get their new columns."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from npsloop_actions.models import SCHEMA
from npsloop_actions.testing import MIGRATIONS
from npsloop_platform.db import Database, migrate, to_async_url


def upgrade_to(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["url"] = to_async_url(url)
    cfg.attributes["schema"] = SCHEMA
    command.upgrade(cfg, revision)


async def test_0002_merges_duplicate_open_cases_and_keeps_the_rest(database_url: str) -> None:
    await asyncio.to_thread(upgrade_to, database_url, "0001")
    db = Database(database_url)
    old, new, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    try:
        async with db.session() as session, session.begin():
            for case_id, customer, opened, status in (
                (old, "acme:c-1", datetime(2026, 11, 1, tzinfo=UTC), "contacted"),
                (new, "acme:c-1", datetime(2026, 11, 2, tzinfo=UTC), "open"),
                (other, "acme:c-2", datetime(2026, 11, 1, tzinfo=UTC), "open"),
            ):
                await session.execute(
                    text(
                        "INSERT INTO actions.cases (case_id, tenant_id, feedback_event_id, customer_key, segment, "
                        "status, reason, opened_at) VALUES (:c, 'acme', :f, :k, 'detractor', :s, 'r', :o)"
                    ),
                    {"c": case_id, "f": uuid.uuid4(), "k": customer, "s": status, "o": opened},
                )
        await migrate(database_url, MIGRATIONS, SCHEMA)
        async with db.session() as session:
            rows = dict((await session.execute(text("SELECT case_id, status FROM actions.cases"))).all())
            merged = (
                await session.execute(text("SELECT detail FROM actions.case_timeline WHERE entry = 'merged'"))
            ).all()
            kinds = set((await session.execute(text("SELECT kind FROM actions.cases"))).scalars())
        assert rows == {old: "closed", new: "open", other: "open"}
        assert [m[0] for m in merged] == [{"into": str(new)}]
        assert kinds == {"callback"}
    finally:
        await db.stop()
