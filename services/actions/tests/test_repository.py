"""The bulk SQL of the actions repository against real PostgreSQL: one transaction per batch."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from npsloop_actions.handlers import Context
from npsloop_actions.testing import (  # noqa: F401 (fixtures)
    classified,
    clock_fixture,
    ctx_fixture,
    db_fixture,
    keyed,
    kinds,
    outbox,
    rows,
    run_batch,
    run_status,
    scalar,
)
from npsloop_platform.db import Database
from npsloop_schemas import (
    DeliveryStatus,
    NotificationKind,
    NotificationStatusPayloadV1,
    NotificationStatusV1,
)


def status_for(
    case_id: uuid.UUID,
    status: DeliveryStatus = DeliveryStatus.SENT,
    kind: NotificationKind = NotificationKind.CALL_TASK,
) -> NotificationStatusV1:
    eid = uuid.uuid4()
    return NotificationStatusV1(
        event_id=eid,
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        tenant_id="acme",
        source="t",
        correlation_id=eid,
        payload=NotificationStatusPayloadV1(
            delivery_id=uuid.uuid4(),
            kind=kind,
            status=status,
            attempts=1,
            case_id=case_id,
            feedback_event_id=uuid.uuid4(),
        ),
    )


async def test_a_batch_writes_in_bulk_and_keeps_outbox_order(db: Database, ctx: Context) -> None:
    events = [classified(s, email=None, customer=f"c-{i}") for i, s in enumerate([10, 2, 8, 0, 9] * 40)]
    batch = keyed(*events) + keyed(events[1])  # a repeat inside the batch
    await run_batch(db, batch, ctx)
    assert await scalar(db, "SELECT count(*) FROM actions.inbox") == 200
    assert await scalar(db, "SELECT count(*) FROM actions.feedback") == 200
    assert await scalar(db, "SELECT count(*) FROM actions.customers") == 200
    assert await scalar(db, "SELECT count(*) FROM actions.cases") == 80
    assert await scalar(db, "SELECT count(*) FROM actions.case_timeline WHERE entry = 'opened'") == 80
    got = kinds(await outbox(db))
    assert got[:2] == ["case.opened:callback", "notification.requested:call_task"]
    assert len(got) == 80 * 2  # no emails: nobody left one; a call task per detractor

    # The same batch again (a redelivery after a crash before the offset commit): nothing new.
    await run_batch(db, batch, ctx)
    assert await scalar(db, "SELECT count(*) FROM actions.outbox") == 160
    assert await scalar(db, "SELECT sum(answers) FROM actions.customers") == 200


async def test_status_changes_in_bulk_and_a_rolled_back_batch_leaves_nothing(db: Database, ctx: Context) -> None:
    detractor = classified(1, customer="c-1")
    await run_batch(db, keyed(detractor), ctx)
    case_id = uuid.UUID(str(await scalar(db, "SELECT case_id FROM actions.cases")))
    ack = status_for(case_id, kind=NotificationKind.ACKNOWLEDGEMENT_EMAIL)
    statuses = [(ack, "acme:c-1"), (status_for(case_id), "acme:c-1"), (status_for(uuid.uuid4()), "acme:c-2")]
    await run_batch(db, keyed(classified(9, customer="z")), ctx, commit=False)  # rolls back on exit
    assert await scalar(db, "SELECT count(*) FROM actions.feedback") == 1
    await run_status(db, statuses, ctx)
    assert await scalar(db, "SELECT status FROM actions.cases") == "contacted"
    assert await scalar(db, "SELECT first_contacted_at IS NOT NULL FROM actions.cases") is True
    entries = "SELECT string_agg(entry, ',' ORDER BY id) FROM actions.case_timeline"
    assert await scalar(db, entries) == "opened,delivery_sent,delivery_sent"
    updates = [k for k in kinds(await outbox(db)) if k.startswith("case.updated")]
    assert updates == ["case.updated:note_added", "case.updated:contacted"]  # an acknowledgement is no contact
    await run_status(db, statuses, ctx)  # redelivered: nothing new
    assert await scalar(db, "SELECT count(*) FROM actions.case_timeline") == 3


async def test_a_sent_call_task_need_not_count_as_contact(db: Database, ctx: Context) -> None:
    from npsloop_actions.policy import DEFAULT_POLICY, parse_policy

    ctx.policy = parse_policy(
        DEFAULT_POLICY.read_text().replace("call_task_counts_as_contact = true", "call_task_counts_as_contact = false")
    )
    await run_batch(db, keyed(classified(1)), ctx)
    case_id = uuid.UUID(str(await scalar(db, "SELECT case_id FROM actions.cases")))
    await run_status(db, [(status_for(case_id), "acme:c-1")], ctx)
    assert await scalar(db, "SELECT status || ':' || (first_contacted_at IS NULL) FROM actions.cases") == "open:true"
    assert [k for k in kinds(await outbox(db)) if k.startswith("case.updated")] == ["case.updated:note_added"]


async def test_marking_cases_plans_for_their_ids_every_time(database_url: str, ctx: Context) -> None:
    """`mark_cases` takes its case ids as an array, which a generic plan counts as 10 rows. After
    five calls PostgreSQL took one made on the small table (a sequential scan), and kept it until
    the next ANALYZE: with 150,000 cases, 53 ms a statement instead of ~1. It asks for a custom
    plan in its own transaction; asyncpg's prepared statements show which kind each call got."""
    from npsloop_actions.models import SCHEMA
    from npsloop_actions.testing import MIGRATIONS
    from npsloop_platform.db import driver_connection, migrate

    await migrate(database_url, MIGRATIONS, SCHEMA)
    db = Database(database_url, pool_size=1)  # one connection: its prepared statements are the ones read
    try:
        await run_batch(db, keyed(*(classified(1, customer=f"c-{i}") for i in range(3))), ctx)
        case_ids = [uuid.UUID(str(r[0])) for r in await rows(db, "SELECT case_id FROM actions.cases")]
        for _ in range(8):
            await run_status(db, [(status_for(c), "acme:c") for c in case_ids], ctx)
        async with driver_connection(db.engine) as conn:
            plans = await conn.fetch(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE '%first_contacted_at = coalesce%'"
                " AND statement NOT LIKE '%pg_prepared_statements%'"
            )
    finally:
        await db.stop()
    assert [(r["generic_plans"], r["custom_plans"]) for r in plans] == [(0, 8)]
