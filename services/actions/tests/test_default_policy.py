"""Each rule of the default policy, on real PostgreSQL: what an answer of each segment sets in motion."""

from __future__ import annotations

from npsloop_actions.handlers import Context
from npsloop_actions.policy import DEFAULT_POLICY, parse_policy
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
    scalar,
)
from npsloop_platform.db import Database
from npsloop_schemas import CaseOpenedV1, NotificationRequestedV1, derive_id


async def test_a_detractor_opens_a_callback_case_asks_for_a_call_and_acknowledges(db: Database, ctx: Context) -> None:
    e = classified(2, comment="Rude staff", themes=[("staff", "negative", -0.7)], sentiment=("negative", -0.7))
    await run_batch(db, keyed(e), ctx)
    events = await outbox(db)
    assert kinds(events) == [
        "case.opened:callback",
        "notification.requested:call_task",
        "notification.requested:acknowledgement_email",
    ]
    opened = events[0]
    assert isinstance(opened, CaseOpenedV1)
    fid = e.payload.feedback_event_id
    assert opened.payload.case_id == derive_id("case", fid)
    # priority: 50 + 3 * (6 - 2) + round(15 * 0.7) = 50 + 12 + 10 (10.5 rounds to even)
    assert opened.payload.priority == 72
    # 48 business hours from Monday 09:00 (no store directory: UTC, no holidays)
    assert (
        opened.payload.sla_due_at is not None and opened.payload.sla_due_at.isoformat() == "2026-11-25T09:00:00+00:00"
    )
    for n in events[1:]:
        assert isinstance(n, NotificationRequestedV1)
        assert n.payload.case_id == opened.payload.case_id
        assert n.payload.delivery_id == derive_id(f"delivery:{n.payload.kind}", fid)
        assert (n.payload.locale, n.payload.channel, n.payload.band) == ("de-DE", "pos", "detractor")
    assert await scalar(db, "SELECT kind || ':' || status FROM actions.cases") == "callback:open"


async def test_urgency_flags_and_a_repeat_detractor_raise_the_priority(db: Database, ctx: Context) -> None:
    plain, urgent = classified(5, customer="a"), classified(5, customer="b", flags=["urgent"])
    await run_batch(db, keyed(plain, urgent), ctx)
    got = dict(await rows(db, "SELECT customer_key, priority FROM actions.cases"))
    assert got == {"acme:a": 53, "acme:b": 78}


async def test_a_passive_is_asked_and_flagged_for_surprise_and_delight_without_a_case(
    db: Database, ctx: Context
) -> None:
    e = classified(8, comment="fine", themes=[("price", "neutral", 0.0)])
    await run_batch(db, keyed(e), ctx)
    assert kinds(await outbox(db)) == ["notification.requested:nurture_email"]
    assert await scalar(db, "SELECT count(*) FROM actions.cases") == 0
    assert await scalar(db, "SELECT surprise_pending FROM actions.customers WHERE customer_key = 'acme:c-1'") is True


async def test_a_passive_naming_a_theme_with_negative_sentiment_opens_a_nurture_case(
    db: Database, ctx: Context
) -> None:
    e = classified(7, comment="Good, but the queue was awful", themes=[("waiting_time", "negative", -0.6)])
    await run_batch(db, keyed(e), ctx)
    assert kinds(await outbox(db)) == ["case.opened:nurture", "notification.requested:nurture_email"]
    assert await scalar(db, "SELECT priority FROM actions.cases") == 20


async def test_a_promoter_is_thanked_and_gets_no_case(db: Database, ctx: Context) -> None:
    await run_batch(db, keyed(classified(10)), ctx)
    assert kinds(await outbox(db)) == ["notification.requested:thank_you_email"]
    assert await scalar(db, "SELECT count(*) FROM actions.cases") == 0


async def test_a_review_invitation_only_where_the_store_asks_for_one(db: Database, ctx: Context) -> None:
    text = DEFAULT_POLICY.read_text() + (
        '\n[[rules]]\nid = "promoter-review-berlin"\nwhen = { band = ["promoter"], stores = ["berlin-1"] }\n'
        'notify = ["review_invitation"]\n'
    )
    ctx.policy = parse_policy(text)
    await run_batch(db, keyed(classified(9, customer="x"), classified(9, customer="y", store="hamburg-2")), ctx)
    assert kinds(await outbox(db)) == [
        "notification.requested:thank_you_email",
        "notification.requested:review_invitation",
        "notification.requested:thank_you_email",
    ]


async def test_no_consent_no_contact_flag_and_no_email_limit_who_is_contacted(db: Database, ctx: Context) -> None:
    await run_batch(
        db,
        keyed(
            classified(1, customer="a", consent=False),
            classified(1, customer="b", flags=["no_contact"]),
            classified(1, customer="c", email=None),
            classified(9, customer="d", email=None),
        ),
        ctx,
    )
    assert kinds(await outbox(db)) == ["case.opened:callback"] * 2 + [
        "case.opened:callback",
        "notification.requested:call_task",
    ]
    assert await scalar(db, "SELECT count(*) FROM actions.cases") == 3
