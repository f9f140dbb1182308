"""A generic plan made on a small table, kept as it grows: actions' `mark_cases` statement.

    uv run --frozen python -m bench.plan_check            # 200 cases, then 150,000, then ANALYZE

On an embedded PostgreSQL of its own: migrates actions' schema, fills `actions.cases`, and times
`mark_cases`'s statement (3 case ids a call, 100 calls, each in its own transaction) on one
prepared statement under the default `plan_cache_mode`, with and without the `SET LOCAL
plan_cache_mode = force_custom_plan` that `SqlActionsRepository.mark_cases` now sends first. After
five calls PostgreSQL may switch to a generic plan; one made while the table held 200 rows scans
it, and stays until the next ANALYZE replans it.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FILL = (
    "INSERT INTO actions.cases (case_id, tenant_id, feedback_event_id, customer_key, segment, status, reason) "
    "SELECT gen_random_uuid(), 'bench', gen_random_uuid(), gen_random_uuid()::text, 'detractor', 'open', 'bench' "
    "FROM generate_series(1, $1)"
)


async def measure(dsn: str, custom: bool) -> list[dict[str, Any]]:
    import asyncpg

    from npsloop_actions.repository import MARK_CASES_SQL
    from npsloop_platform.db import Statement

    conn = await asyncpg.connect(dsn)
    out = []
    try:
        await conn.execute("TRUNCATE actions.cases CASCADE")
        await conn.execute(FILL, 200)
        await conn.execute("ANALYZE actions.cases")
        statement = await conn.prepare(Statement(MARK_CASES_SQL).sql)

        async def timed(label: str) -> None:
            ids = [r[0] for r in await conn.fetch("SELECT case_id FROM actions.cases ORDER BY random() LIMIT 300")]
            t0 = time.perf_counter()
            for i in range(100):
                async with conn.transaction():
                    if custom:
                        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
                    await statement.fetch(ids[i * 3 : (i + 1) * 3], [None] * 3)
            ms = (time.perf_counter() - t0) * 10
            plans = await conn.fetchrow(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = $1", statement.get_name()
            )
            out.append({"table": label, "custom": custom, "ms_per_statement": round(ms, 2), **dict(plans)})
            print(
                f"  {label:<26} {'SET LOCAL custom' if custom else 'default':<18} {ms:7.2f} ms a statement  "
                f"(generic plans {plans['generic_plans']}, custom {plans['custom_plans']})",
                flush=True,
            )

        await timed("200 cases")
        await conn.execute(FILL, 150_000)
        await timed("150,200 cases, no ANALYZE")
        await conn.execute("ANALYZE actions.cases")
        await timed("150,200 cases, ANALYZE")
    finally:
        await conn.close()
    return out


def main() -> int:
    from sqlalchemy.engine import make_url

    from npsloop_actions.models import SCHEMA
    from npsloop_actions.testing import MIGRATIONS
    from npsloop_platform.db import migrate
    from npsloop_platform.testing.infra import fresh_database, postgres_server

    with tempfile.TemporaryDirectory(prefix="npsloop-plan-check-") as tmp, postgres_server(Path(tmp) / "pg") as url:

        async def run() -> None:
            async with fresh_database(url) as db_url:
                await migrate(db_url, MIGRATIONS, SCHEMA)
                dsn = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
                for custom in (False, True):
                    await measure(dsn, custom)

        asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
