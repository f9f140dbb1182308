"""Test helpers for actions (like `npsloop_platform.testing`): events, fixtures and a batch runner on
real PostgreSQL, one unit of work per batch. Imported by tests only."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from npsloop_actions.deliveries import handle_status
from npsloop_actions.handlers import Context, handle_feedback
from npsloop_actions.models import SCHEMA
from npsloop_actions.policy import load_policy
from npsloop_actions.ports import CaseChange, CaseRef, Customer, OpenCase, StoredFeedback
from npsloop_actions.repository import SqlActionsRepository
from npsloop_platform.db import Database, migrate
from npsloop_platform.uow import SqlUnitOfWork
from npsloop_schemas import (
    Band,
    CaseKind,
    CaseStatus,
    Contact,
    Envelope,
    FeedbackClassifiedPayloadV1,
    FeedbackClassifiedV1,
    FeedbackReceivedPayloadV1,
    FeedbackReclassifiedPayloadV1,
    FeedbackReclassifiedV1,
    FeedbackUpdatedPayloadV1,
    Sentiment,
    ThemeSentiment,
    band_for,
    customer_key,
    parse_event,
)

MIGRATIONS = Path(__file__).parent / "migrations"
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday, no holiday in DE


class Clock:
    def __init__(self, now: datetime = MONDAY) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture(name="db")
async def db_fixture(database_url: str) -> AsyncIterator[Database]:
    await migrate(database_url, MIGRATIONS, SCHEMA)
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.stop()


@pytest.fixture(name="clock")
def clock_fixture() -> Clock:
    return Clock()


@pytest.fixture(name="ctx")
def ctx_fixture(clock: Clock) -> Context:
    return Context(load_policy(), source="actions", clock=clock)


def classified(
    score: int,
    customer: str | None = "c-1",
    email: str | None = "c@example.com",
    phone: str | None = "+4915112345678",
    comment: str | None = None,
    store: str | None = "berlin-1",
    themes: Sequence[tuple[str, str, float]] = (),
    sentiment: tuple[str, float] | None = None,
    flags: Sequence[str] = (),
    consent: bool = True,
    tenant: str = "acme",
) -> FeedbackClassifiedV1:
    fid = uuid.uuid4()
    fb = FeedbackReceivedPayloadV1(
        score=score,
        channel="pos",
        customer_id=customer,
        store_id=store,
        comment=comment,
        contact=Contact(email=email, phone=phone),
        consent_to_contact=consent,
        locale="de-DE",
    )
    return FeedbackClassifiedV1(
        event_id=uuid.uuid4(),
        occurred_at=MONDAY,
        tenant_id=tenant,
        source="t",
        correlation_id=fid,
        causation_id=fid,
        payload=FeedbackClassifiedPayloadV1(
            feedback_event_id=fid,
            feedback=fb,
            band=band_for(score),
            sentiment=Sentiment(label=sentiment[0], compound=sentiment[1], model="t") if sentiment else None,
            themes=[t for t, _, _ in themes],
            theme_sentiments=[ThemeSentiment(theme=t, label=lab, compound=c) for t, lab, c in themes],
            flags=list(flags),
            language="de",
        ),
    )


def reclassified(
    original: FeedbackClassifiedV1,
    comment: str,
    themes: Sequence[tuple[str, str, float]] = (),
    sentiment: tuple[str, float] | None = None,
    flags: Sequence[str] = (),
    feedback_event_id: uuid.UUID | None = None,
) -> FeedbackReclassifiedV1:
    fid = feedback_event_id or original.payload.feedback_event_id
    update_id = uuid.uuid4()
    return FeedbackReclassifiedV1(
        event_id=uuid.uuid4(),
        occurred_at=MONDAY,
        tenant_id=original.tenant_id,
        source="t",
        correlation_id=original.correlation_id,
        causation_id=update_id,
        payload=FeedbackReclassifiedPayloadV1(
            feedback_event_id=fid,
            update_event_id=update_id,
            update=FeedbackUpdatedPayloadV1(feedback_event_id=fid, fields=["comment"], comment=comment),
            sentiment=Sentiment(label=sentiment[0], compound=sentiment[1], model="t") if sentiment else None,
            themes=[t for t, _, _ in themes],
            theme_sentiments=[ThemeSentiment(theme=t, label=lab, compound=c) for t, lab, c in themes],
            flags=list(flags),
        ),
    )


def key_of(e: FeedbackClassifiedV1 | FeedbackReclassifiedV1) -> str:
    if isinstance(e, FeedbackClassifiedV1):
        return customer_key(e.tenant_id, e.payload.feedback.customer_id, e.payload.feedback_event_id)
    raise TypeError("pass the key of a late comment explicitly")


def keyed(*events: FeedbackClassifiedV1) -> list[tuple[Any, str]]:
    return [(e, key_of(e)) for e in events]


async def run_batch(db: Database, items: Sequence[tuple[Any, str]], ctx: Context, commit: bool = True) -> list[Any]:
    """One batch in one unit of work, as the consumer edge runs it (rolled back without commit)."""
    async with SqlUnitOfWork(db) as uow:
        repo = SqlActionsRepository(uow.session)
        refused = await handle_feedback(items, repo, ctx)
        await repo.flush()
        if commit:
            await uow.commit()
    return refused


async def run_status(db: Database, items: Sequence[tuple[Any, str]], ctx: Context) -> None:
    async with SqlUnitOfWork(db) as uow:
        repo = SqlActionsRepository(uow.session)
        await handle_status(items, repo, ctx)
        await repo.flush()
        await uow.commit()


async def scalar(db: Database, sql: str, **params: Any) -> Any:
    async with db.session() as session:
        return (await session.execute(text(sql), params)).scalar_one()


async def rows(db: Database, sql: str, **params: Any) -> list[Any]:
    async with db.session() as session:
        return list(await session.execute(text(sql), params))


async def outbox(db: Database) -> list[Envelope]:
    async with db.session() as session:
        values = (await session.execute(text("SELECT value FROM actions.outbox ORDER BY id"))).scalars()
        return [parse_event(v) for v in values]


def kinds(events: Sequence[Envelope]) -> list[str]:
    out = []
    for e in events:
        payload = getattr(e, "payload", None)
        kind, change = getattr(payload, "kind", None), getattr(payload, "change", None)
        out.append(f"{e.event_type}:{kind or change or ''}")
    return out


class FakeActionsRepository:
    """The ActionsRepository port in memory, for handler tests without a database."""

    def __init__(self) -> None:
        self.inbox: set[uuid.UUID] = set()
        self.feedback: dict[uuid.UUID, dict[str, Any]] = {}
        self.cases: dict[uuid.UUID, dict[str, Any]] = {}
        self.timeline: list[tuple[uuid.UUID, str]] = []
        self.journeys: dict[str, Customer] = {}
        self.outbox: list[tuple[Envelope, str]] = []

    async def claim_inbox(self, events: Sequence[Envelope]) -> set[uuid.UUID]:
        fresh = {e.event_id for e in events} - self.inbox
        self.inbox |= fresh
        return fresh

    async def customers(self, tenant_keys: Sequence[tuple[str, str, str | None]]) -> dict[str, Customer]:
        out = {}
        for tenant, key, cid in tenant_keys:
            c = copy.deepcopy(self.journeys.get(key)) or Customer(key, tenant, cid)
            c.surprise_set_now, c.changed = False, False
            c.open_case = next(
                (
                    OpenCase(
                        r["case_id"], CaseKind(r["kind"]), CaseStatus(r["status"]), Band(r["segment"]),
                        r["priority"], r["store_id"], list(r["themes"]), list(r["flags"]),
                    )
                    for r in self.cases.values()
                    if r["customer_key"] == key and r["status"] in ("open", "contacted")
                ),
                None,
            )  # fmt: skip
            out[key] = c
        return out

    async def stored_feedback(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StoredFeedback]:
        return {}  # late comments are tested on PostgreSQL

    def add_feedback(self, row: dict[str, Any]) -> None:
        self.feedback[row["feedback_event_id"]] = dict(row)

    def update_feedback(self, feedback_event_id: uuid.UUID, values: dict[str, Any]) -> None:
        self.feedback[feedback_event_id].update(values)

    def open_case(self, row: dict[str, Any]) -> None:
        self.cases[row["case_id"]] = dict(row)

    def update_case(self, case_id: uuid.UUID, values: dict[str, Any]) -> None:
        self.cases[case_id].update(values)

    def add_timeline(self, case_id: uuid.UUID, entry: str, detail: dict[str, Any], actor: str | None = None) -> None:
        self.timeline.append((case_id, entry))

    def save_customer(self, customer: Customer) -> None:
        self.journeys[customer.customer_key] = copy.deepcopy(customer)

    async def mark_cases(self, changes: Sequence[CaseChange]) -> dict[uuid.UUID, CaseRef]:
        return {}

    def add_outbox(self, event: Envelope, key: str) -> None:
        self.outbox.append((event, key))
