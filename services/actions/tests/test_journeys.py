"""One open case per customer, journeys (a slip, a recovery), late comments, and the customer API's data."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from npsloop_actions.consumer import transient
from npsloop_actions.handlers import Context
from npsloop_actions.queries import Scope, get_customer, record_visit
from npsloop_actions.testing import (  # noqa: F401 (fixtures)
    classified,
    clock_fixture,
    ctx_fixture,
    db_fixture,
    keyed,
    kinds,
    outbox,
    reclassified,
    rows,
    run_batch,
    scalar,
)
from npsloop_platform.db import Database
from npsloop_platform.retry import retrying
from npsloop_schemas import CaseUpdatedV1

OPEN = "SELECT count(*) FROM actions.cases WHERE status IN ('open', 'contacted')"


async def test_new_feedback_of_a_customer_with_an_open_case_joins_it(db: Database, ctx: Context) -> None:
    first, second = classified(3), classified(1, comment="still waiting", flags=["urgent"])
    await run_batch(db, keyed(first), ctx)
    await run_batch(db, keyed(second), ctx)
    assert await scalar(db, "SELECT count(*) FROM actions.cases") == 1
    case_id = await scalar(db, "SELECT case_id FROM actions.cases")
    assert await scalar(db, "SELECT count(*) FROM actions.feedback WHERE case_id = :c", c=case_id) == 2
    events = await outbox(db)
    assert kinds(events)[3:] == ["case.updated:feedback_attached"]  # no second call, no second acknowledgement
    attached = events[3]
    assert isinstance(attached, CaseUpdatedV1)
    assert attached.payload.feedback_event_id == second.payload.feedback_event_id
    assert (attached.payload.store_id, attached.payload.customer_key) == ("berlin-1", "acme:c-1")
    assert attached.payload.priority is not None and attached.payload.priority > 59  # raised: urgent, repeat


async def test_a_detractor_upgrades_an_open_nurture_case_to_a_callback(db: Database, ctx: Context) -> None:
    await run_batch(db, keyed(classified(7, themes=[("price", "negative", -0.5)])), ctx)
    assert await scalar(db, "SELECT kind FROM actions.cases") == "nurture"
    await run_batch(db, keyed(classified(2)), ctx)
    assert await scalar(db, "SELECT kind || ':' || segment FROM actions.cases") == "callback:detractor"
    assert kinds(await outbox(db))[-3:] == [
        "case.updated:feedback_attached",
        "notification.requested:call_task",
        "notification.requested:acknowledgement_email",
    ]


async def test_one_case_per_customer_under_concurrent_feedback(db: Database, ctx: Context) -> None:
    """Two units of work (two consumers in a rebalance) race on one customer: one case, the other joins."""
    answers = [classified(i % 7, customer="same") for i in range(8)]
    gate, stop, lost = asyncio.Event(), asyncio.Event(), list[str]()

    async def worker(part: list[object]) -> None:
        await gate.wait()
        items = [(e, "acme:same") for e in part]
        await retrying(
            "race",
            lambda: run_batch(db, items, ctx),
            stopping=stop,
            transient=transient,
            initial_s=0.01,
            max_s=0.05,
            on_retry=lambda exc, _: lost.append(type(exc).__name__),
        )

    tasks = [asyncio.create_task(worker(answers[i::2])) for i in range(2)]
    gate.set()
    await asyncio.gather(*tasks)
    assert await scalar(db, OPEN) == 1
    print("lost races:", lost)
    assert set(lost) <= {"OpenCaseRace"}
    assert await scalar(db, "SELECT count(*) FROM actions.feedback") == 8
    assert await scalar(db, "SELECT count(DISTINCT case_id) FROM actions.feedback") == 1
    assert kinds(await outbox(db)).count("case.opened:callback") == 1
    assert kinds(await outbox(db)).count("case.updated:feedback_attached") == 7


async def test_a_slip_marks_the_customer_at_risk_and_raises_the_priority(db: Database, ctx: Context) -> None:
    await run_batch(db, keyed(classified(10, customer="p")), ctx)
    await run_batch(db, keyed(classified(5, customer="p"), classified(5, customer="fresh")), ctx)
    got = dict(await rows(db, "SELECT customer_key, at_risk FROM actions.customers"))
    assert got == {"acme:p": True, "acme:fresh": False}
    prio = dict(await rows(db, "SELECT customer_key, priority FROM actions.cases"))
    assert prio["acme:p"] == prio["acme:fresh"] + 10
    # passive -> detractor is a slip too
    await run_batch(db, keyed(classified(8, customer="q")), ctx)
    await run_batch(db, keyed(classified(4, customer="q")), ctx)
    assert await scalar(db, "SELECT at_risk FROM actions.customers WHERE customer_key = 'acme:q'") is True


async def test_a_former_detractor_who_answers_9_or_10_counts_as_recovered(db: Database, ctx: Context) -> None:
    await run_batch(db, keyed(classified(2, customer="r")), ctx)
    await run_batch(db, keyed(classified(9, customer="r")), ctx)
    row = (await rows(db, "SELECT recovered, at_risk, current_band, previous_band FROM actions.customers"))[0]
    assert tuple(row) == (True, False, "promoter", "detractor")
    customer = await get_customer_data(db, "r", ctx)
    assert customer["markers"]["recovered"] is True and customer["current_band"] == "promoter"
    assert [h["score"] for h in customer["history"]] == [2, 9]


async def get_customer_data(db: Database, customer_id: str, ctx: Context) -> dict[str, object]:
    async with db.session() as session:
        found = await get_customer(session, Scope("acme", None), customer_id, ctx.clock())
    assert found is not None
    return found


async def test_a_visit_clears_surprise_and_delight_exactly_once(db: Database, ctx: Context) -> None:
    await run_batch(db, keyed(classified(8, customer="v")), ctx)
    customer = await get_customer_data(db, "v", ctx)
    assert customer["next_visit"]["surprise_and_delight"] is True  # type: ignore[index]

    async def visit(visit_id: str) -> dict[str, object] | None:
        async with db.session() as session, session.begin():
            return await record_visit(session, Scope("acme", None), "v", visit_id, "berlin-1")

    results = await asyncio.gather(*(visit(f"visit-{i}") for i in range(5)))
    assert sorted(bool(r and r["cleared_surprise"]) for r in results) == [False] * 4 + [True]
    winner = next(r for r in results if r and r["cleared_surprise"])
    again = await visit(str(winner["visit_id"]))  # the till retries the same visit
    assert again == {"visit_id": winner["visit_id"], "status": "duplicate", "cleared_surprise": True}
    assert (await get_customer_data(db, "v", ctx))["next_visit"]["surprise_and_delight"] is False  # type: ignore[index]
    async with db.session() as session:
        assert await get_customer(session, Scope("acme", frozenset({"hamburg-2"})), "v", ctx.clock()) is None
        assert await get_customer(session, Scope("globex", None), "v", ctx.clock()) is None


async def test_a_late_comment_updates_the_feedback_and_its_case_and_reruns_the_rules(
    db: Database, ctx: Context
) -> None:
    passive = classified(8, customer="late")
    await run_batch(db, keyed(passive), ctx)
    assert await scalar(db, "SELECT count(*) FROM actions.cases") == 0
    late = reclassified(passive, "the queue was awful", themes=[("waiting_time", "negative", -0.6)])
    assert await run_batch(db, [(late, "acme:late")], ctx) == []
    assert await run_batch(db, [(late, "acme:late")], ctx) == []  # redelivered: nothing new
    assert await scalar(db, "SELECT comment FROM actions.feedback") == "the queue was awful"
    assert await scalar(db, "SELECT kind FROM actions.cases") == "nurture"  # the rules ran again
    assert kinds(await outbox(db)) == ["notification.requested:nurture_email", "case.opened:nurture"]
    assert await scalar(db, "SELECT answers FROM actions.customers WHERE customer_key = 'acme:late'") == 1

    detractor = classified(3, customer="late2")
    late2 = reclassified(detractor, "and nobody helped", themes=[("staff", "negative", -0.8)], flags=["urgent"])
    await run_batch(db, [*keyed(detractor), (late2, "acme:late2")], ctx)  # both in one batch, in order
    events = await outbox(db)
    assert kinds(events)[-1] == "case.updated:feedback_updated"
    assert isinstance(events[-1], CaseUpdatedV1) and events[-1].payload.customer_key == "acme:late2"
    assert await scalar(db, "SELECT flags FROM actions.cases WHERE customer_key = 'acme:late2'") == ["urgent"]
    assert kinds(events).count("notification.requested:call_task") == 1  # no second call


async def test_a_late_comment_on_unknown_feedback_is_refused_and_not_claimed(db: Database, ctx: Context) -> None:
    ghost = reclassified(classified(8), "who?", feedback_event_id=uuid.uuid4())
    good = classified(9, customer="g")
    refused = await run_batch(db, [(ghost, "acme:c-1"), *keyed(good)], ctx)
    assert len(refused) == 1 and refused[0][0] == 0 and "unknown feedback" in refused[0][1]
    assert await scalar(db, "SELECT count(*) FROM actions.inbox") == 1  # the good one only


async def test_a_late_comment_on_a_resolved_case_updates_it_without_reopening(db: Database, ctx: Context) -> None:
    detractor = classified(2, customer="done")
    await run_batch(db, keyed(detractor), ctx)
    async with db.session() as session, session.begin():
        await session.execute(text("UPDATE actions.cases SET status = 'resolved'"))
    late = reclassified(detractor, "and the till was broken", themes=[("checkout_payment", "negative", -0.5)])
    await run_batch(db, [(late, "acme:done")], ctx)
    events = await outbox(db)
    assert kinds(events)[-1] == "case.updated:feedback_updated"
    assert isinstance(events[-1], CaseUpdatedV1) and events[-1].payload.status == "resolved"
    assert (
        await scalar(db, "SELECT status || ':' || (themes ? 'checkout_payment') FROM actions.cases") == "resolved:true"
    )
    assert await scalar(db, "SELECT count(*) FROM actions.cases") == 1
