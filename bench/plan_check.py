"""A generic plan made on a small table, kept as it grows: actions' `mark_cases` statement, and
notifier's `begin` and `finish` of emails, call tasks and webhooks, and reporting's figures.

    uv run --frozen python -m bench.plan_check            # small tables, then many more rows, then ANALYZE (~1 min)

On an embedded PostgreSQL of its own: migrates actions' schema, fills `actions.cases`, and times
`mark_cases`'s statement (3 case ids a call, 100 calls, each in its own transaction) on one
prepared statement under the default `plan_cache_mode`, with and without the `SET LOCAL
plan_cache_mode = force_custom_plan` that `SqlActionsRepository.mark_cases` now sends first. After
five calls PostgreSQL may switch to a generic plan; one made while the table held 200 rows scans
it, and stays until the next ANALYZE replans it.

Notifier's stores are driven through `SqlDeliveryStore` and `SqlWebhookStore` themselves (3
deliveries a call, 100 begins and 100 finishes) on a one-connection pool, with and without
`CUSTOM_PLANS` on it, as notifier's `build` sets; the plans counted are those of their statements
in `pg_prepared_statements`. Reporting's figures run in a plain session and in the
`custom_plan_session` its endpoints use.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
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


async def then_grown(
    engine: Any, table: str, fill: str, rows: int, noun: str, timed: Callable[[str], Awaitable[None]]
) -> None:
    """`timed` after `rows` more rows (`fill`) before the next ANALYZE, and after it."""
    from npsloop_platform.db import driver_connection

    async with driver_connection(engine) as conn:
        await conn.execute(fill, rows)
    await timed(f"+{rows:,} {noun}, no ANALYZE")
    async with driver_connection(engine) as conn:
        await conn.execute(f"ANALYZE {table}")
    await timed(f"+{rows:,} {noun}, ANALYZE")


DELIVERIES_FILL = (
    "INSERT INTO notifier.deliveries (delivery_id, kind, tenant_id, customer_key, status, attempts) "
    "SELECT gen_random_uuid(), 'call_task', 'bench', 'bench:' || g, 'sent', 1 FROM generate_series(1, $1) AS g"
)


async def measure_notifier(db_url: str, custom: bool, webhooks: bool = False) -> list[dict[str, Any]]:
    """3 deliveries a `begin`, each finished in its own `finish`: of emails and call tasks
    (`SqlDeliveryStore`), or of one webhook subscription (`SqlWebhookStore`)."""
    import uuid
    from datetime import UTC, datetime

    from bench.notifier import requests as call_tasks
    from npsloop_notifier import repository, webhook_repository
    from npsloop_notifier.ports import Attempt, Gate, Outcome, WebhookJob
    from npsloop_notifier.repository import SqlDeliveryStore
    from npsloop_notifier.webhook_repository import SqlWebhookStore
    from npsloop_platform.db import CUSTOM_PLANS, Database, driver_connection

    db = Database(db_url, pool_size=1, session_settings=CUSTOM_PLANS if custom else None)
    store = SqlDeliveryStore(db)
    hooks = SqlWebhookStore(db, disable_after=1_000_000)
    module = webhook_repository if webhooks else repository
    statements = {module._BEGIN.sql: "begin", module._FINISH.sql: "finish"}
    out = []
    try:
        async with driver_connection(store.engine) as conn:
            await conn.execute("TRUNCATE notifier.deliveries, notifier.webhook_subscriptions CASCADE")
        if webhooks:
            await hooks.create("bench", "http://127.0.0.1:9/hook", ["*"], None, "bench")
            (subscription,) = await hooks.subscriptions(["bench"])

        async def one_round(now: datetime) -> tuple[float, float]:
            t0 = time.perf_counter()
            if webhooks:
                jobs = [
                    WebhookJob(uuid.uuid4(), subscription, uuid.uuid4(), "case.opened", "bench", f"bench:{i}", "{}")
                    for i in range(3)
                ]
                await hooks.begin(jobs)
                t1 = time.perf_counter()
                for job in jobs:  # one after another: each its own flush
                    await hooks.finish(job, Outcome("sent", [Attempt(1, now)]), total_attempts=1)
            else:
                requests = call_tasks(3, "call_task")
                await store.begin(requests, [Gate()] * 3, now)
                t1 = time.perf_counter()
                for r in requests:
                    await store.finish(r, Outcome("sent", [Attempt(1, now)]), now)
            return t1 - t0, time.perf_counter() - t1

        async def rounds(n: int) -> tuple[float, float]:
            began = finished = 0.0
            for _ in range(n):
                b, f = await one_round(datetime.now(UTC))
                began, finished = began + b, finished + f
            return began * 1000 / n, finished * 1000 / n / 3

        async def timed(label: str) -> None:
            begin_ms, finish_ms = await rounds(100)
            async with driver_connection(store.engine) as conn:
                plans = await conn.fetch(
                    "SELECT statement, generic_plans FROM pg_prepared_statements WHERE statement = ANY($1)",
                    list(statements),
                )
            generic = {statements[p["statement"]]: p["generic_plans"] for p in plans}
            out.append(
                {
                    "table": label,
                    "custom": custom,
                    "webhooks": webhooks,
                    "begin_ms": round(begin_ms, 2),
                    "finish_ms": round(finish_ms, 2),
                    "generic_plans": generic,
                }
            )
            print(
                f"  {label:<31} {'CUSTOM_PLANS' if custom else 'default':<13} begin {begin_ms:6.2f} ms, "
                f"finish {finish_ms:6.2f} ms a statement  (generic plans {generic})",
                flush=True,
            )

        await rounds(70)  # 210 deliveries: a small table, and more than five calls of each statement
        async with driver_connection(store.engine) as conn:
            await conn.execute("ANALYZE notifier.deliveries")
        await timed("~500 deliveries")
        await then_grown(store.engine, "notifier.deliveries", DELIVERIES_FILL, 150_000, "deliveries", timed)
    finally:
        await db.stop()
    return out


RESPONSES_FILL = (
    "INSERT INTO reporting.responses (feedback_event_id, tenant_id, store_id, region, channel, customer_key, "
    "  score, band, occurred_at, local_at) "
    "SELECT gen_random_uuid(), 'acme', 'store-' || (g % 40), 'r' || (g % 4), 'pos', 'acme:c' || g, g % 11, 'x', "
    "  now() - (g % 730) * interval '1 day', now() - (g % 730) * interval '1 day' FROM generate_series(1, $1) AS g"
)


async def measure_reporting(db_url: str, custom: bool) -> list[dict[str, Any]]:
    """Reporting's figures for one day (by store, the score distribution, a 7-day series), for a key
    scoped to two stores and for a whole tenant, on 200 answers and then 500,000 over two years; in a
    plain session, and in the `custom_plan_session` its read endpoints and digest now use."""
    from datetime import date

    from npsloop_platform.db import Database, custom_plan_session, driver_connection
    from npsloop_reporting.figures import Scope, nps_breakdown, nps_series, score_distribution
    from npsloop_reporting.periods import Period, PeriodKind

    db = Database(db_url, pool_size=1)
    day = Period.containing(PeriodKind.DAY, date.today())
    scopes = (Scope("acme", key_stores=frozenset({"store-1", "store-2"})), Scope("acme"))
    out = []
    try:
        async with driver_connection(db.engine) as conn:
            await conn.execute("TRUNCATE reporting.responses CASCADE")
            await conn.execute(RESPONSES_FILL, 200)
            await conn.execute("ANALYZE reporting.responses")

        async def timed(label: str, calls: int = 20) -> None:
            t0 = time.perf_counter()
            for _ in range(calls):
                for scope in scopes:
                    async with custom_plan_session(db) if custom else db.session() as session:
                        await nps_breakdown(session, scope, day, "store")
                        await score_distribution(session, scope, day)
                        await nps_series(session, scope, day, 7)
            ms = (time.perf_counter() - t0) * 1000 / calls / len(scopes) / 3
            async with driver_connection(db.engine) as conn:
                generic = await conn.fetchval(
                    "SELECT coalesce(sum(generic_plans), 0) FROM pg_prepared_statements "
                    "WHERE statement LIKE '%reporting.responses r%' AND statement NOT LIKE '%pg_prepared%'"
                )
            out.append({"table": label, "custom": custom, "ms_per_query": round(ms, 2), "generic_plans": generic})
            print(
                f"  {label:<31} {'custom_plan_session' if custom else 'default':<19} {ms:6.2f} ms a query  "
                f"(generic plans {generic})",
                flush=True,
            )

        await timed("200 answers")
        await then_grown(db.engine, "reporting.responses", RESPONSES_FILL, 500_000, "answers", timed)
    finally:
        await db.stop()
    return out


def main() -> int:
    from sqlalchemy.engine import make_url

    from npsloop_actions.models import SCHEMA
    from npsloop_actions.testing import MIGRATIONS
    from npsloop_notifier.main import MIGRATIONS as NOTIFIER_MIGRATIONS
    from npsloop_notifier.models import SCHEMA as NOTIFIER_SCHEMA
    from npsloop_platform.db import migrate
    from npsloop_platform.testing.infra import fresh_database, postgres_server
    from npsloop_reporting.consumer import MIGRATIONS as REPORTING_MIGRATIONS
    from npsloop_reporting.models import SCHEMA as REPORTING_SCHEMA

    with tempfile.TemporaryDirectory(prefix="npsloop-plan-check-") as tmp, postgres_server(Path(tmp) / "pg") as url:

        async def run() -> None:
            async with fresh_database(url) as db_url:
                await migrate(db_url, MIGRATIONS, SCHEMA)
                dsn = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
                print("actions: mark_cases", flush=True)
                for custom in (False, True):
                    await measure(dsn, custom)
                await migrate(db_url, NOTIFIER_MIGRATIONS, NOTIFIER_SCHEMA)
                print("notifier: begin and finish of emails and call tasks", flush=True)
                for custom in (False, True):
                    await measure_notifier(db_url, custom)
                print("notifier: begin and finish of webhooks", flush=True)
                for custom in (False, True):
                    await measure_notifier(db_url, custom, webhooks=True)
                await migrate(db_url, REPORTING_MIGRATIONS, REPORTING_SCHEMA)
                print("reporting: the figures of one day", flush=True)
                for custom in (False, True):
                    await measure_reporting(db_url, custom)

        asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
