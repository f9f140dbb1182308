"""Actions' domain logic against the in-memory fake of its repository port (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

from npsloop_actions.handlers import Context, handle_feedback
from npsloop_actions.policy import load_policy
from npsloop_actions.testing import Clock, FakeActionsRepository, classified, keyed, kinds


def context() -> Context:
    return Context(load_policy(), source="actions", clock=Clock(datetime(2026, 11, 23, 9, tzinfo=UTC)))


async def test_a_batch_is_worked_in_order_and_repeats_drop_out() -> None:
    repo, ctx = FakeActionsRepository(), context()
    first, again, later = classified(3), classified(1), classified(10)
    batch = keyed(first, again, first, later)  # one customer: a detractor, another, a repeat, a promoter
    assert await handle_feedback(batch, repo, ctx) == []
    assert len(repo.cases) == 1 and len(repo.feedback) == 3
    assert kinds([e for e, _ in repo.outbox]) == [
        "case.opened:callback",
        "notification.requested:call_task",
        "notification.requested:acknowledgement_email",
        "case.updated:feedback_attached",
        "case.updated:feedback_attached",
        "notification.requested:thank_you_email",
    ]
    assert {key for _, key in repo.outbox} == {"acme:c-1"}
    journey = repo.journeys["acme:c-1"]
    assert (journey.answers, journey.current_band, journey.recovered) == (3, "promoter", True)
    await handle_feedback(batch, repo, ctx)  # redelivered
    assert len(repo.outbox) == 6


async def test_anonymous_answers_have_no_journey_but_get_their_own_case() -> None:
    repo = FakeActionsRepository()
    await handle_feedback(keyed(classified(2, customer=None), classified(2, customer=None)), repo, context())
    assert len(repo.cases) == 2 and repo.journeys == {}
    assert all(":anon:" in key for _, key in repo.outbox)
