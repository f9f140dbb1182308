"""SQL implementation of the ActionsRepository port, inside the batch's one AsyncSession transaction.

Writes are collected and sent as bulk statements by `flush()` (SQLAlchemy's insertmanyvalues
pages them, so no statement outgrows PostgreSQL's parameter limit). Outbox rows are inserted in
the order they were added, so their ids, and hence the relay's publishing order, follow it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, case, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop_platform.db import custom_plans
from npsloop_schemas import Band, CaseKind, CaseStatus, Channel, Envelope, serialize_event, topic_for

from .models import CaseRow, CaseTimelineRow, CustomerRow, FeedbackRow, InboxRow, OutboxRow
from .ports import CaseChange, CaseRef, Customer, OpenCase, OpenCaseRace, StoredFeedback

FEEDBACK, CASES, TIMELINE = (
    cast(Table, FeedbackRow.__table__),
    cast(Table, CaseRow.__table__),
    cast(Table, CaseTimelineRow.__table__),
)
CUSTOMERS, OUTBOX = cast(Table, CustomerRow.__table__), cast(Table, OutboxRow.__table__)
OPEN_STATUSES = (str(CaseStatus.OPEN), str(CaseStatus.CONTACTED))
# `mark_cases`: lock the cases, then mark them contacted at their first contact (`bench/plan_check.py` times it).
MARK_CASES_SQL = (
    "WITH old AS (SELECT case_id, first_contacted_at FROM actions.cases "
    "  WHERE case_id = ANY(CAST(:ids AS uuid[])) FOR UPDATE), "
    "v AS (SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:ats AS timestamptz[])) AS v(case_id, at)) "
    "UPDATE actions.cases AS c SET "
    "  status = CASE WHEN v.at IS NOT NULL AND c.status = 'open' THEN 'contacted' ELSE c.status END, "
    "  first_contacted_at = coalesce(c.first_contacted_at, v.at), updated_at = now() "
    "FROM v JOIN old ON old.case_id = v.case_id WHERE c.case_id = v.case_id "
    "RETURNING c.case_id, c.status, c.store_id, c.customer_key, "
    "  (old.first_contacted_at IS NULL AND v.at IS NOT NULL) AS first_contact"
)


def pg_text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL: another producer's NUL becomes U+FFFD instead of a poison batch."""
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


class SqlActionsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._feedback: list[dict[str, Any]] = []
        self._feedback_updates: dict[uuid.UUID, dict[str, Any]] = {}
        self._cases: list[dict[str, Any]] = []
        self._case_updates: dict[uuid.UUID, dict[str, Any]] = {}
        self._timeline: list[dict[str, Any]] = []
        self._customers: dict[str, dict[str, Any]] = {}
        self._outbox: list[dict[str, Any]] = []
        self.outbox_added = 0

    async def claim_inbox(self, events: Sequence[Envelope]) -> set[uuid.UUID]:
        if not events:
            return set()
        stmt = (
            pg_insert(InboxRow).on_conflict_do_nothing(index_elements=[InboxRow.event_id]).returning(InboxRow.event_id)
        )
        rows = [{"event_id": e.event_id, "event_type": e.type_tag} for e in events]
        result = await self.session.execute(stmt, rows)
        return set(result.scalars())

    async def customers(self, tenant_keys: Sequence[tuple[str, str, str | None]]) -> dict[str, Customer]:
        """The journeys (locked until the batch commits, in key order) and open cases of these customers."""
        out = {key: Customer(key, tenant, pg_text(cid)) for tenant, key, cid in tenant_keys}
        known = [k for k, c in out.items() if not c.anonymous]
        tenants = {k: c.tenant_id for k, c in out.items()}
        if known:
            rows = await self.session.execute(
                select(CustomerRow)
                .where(CustomerRow.customer_key.in_(known))
                .order_by(CustomerRow.customer_key)
                .with_for_update()
            )
            for r in rows.scalars():
                if tenants.get(r.customer_key) != r.tenant_id:
                    continue
                out[r.customer_key] = Customer(
                    r.customer_key,
                    r.tenant_id,
                    r.customer_id,
                    exists=True,
                    current_band=Band(r.current_band),
                    previous_band=Band(r.previous_band) if r.previous_band else None,
                    last_score=r.last_score,
                    answers=r.answers,
                    at_risk=r.at_risk,
                    at_risk_since=r.at_risk_since,
                    was_detractor=r.was_detractor,
                    recovered=r.recovered,
                    recovered_at=r.recovered_at,
                    surprise_reason=r.surprise_reason,
                    surprise_set_at=r.surprise_set_at,
                    last_store_id=r.last_store_id,
                    first_seen_at=r.first_seen_at,
                    last_seen_at=r.last_seen_at,
                )
        rows2 = await self.session.execute(
            select(CaseRow).where(CaseRow.customer_key.in_(list(out)), CaseRow.status.in_(OPEN_STATUSES))
        )
        for row in rows2.scalars():
            c = out.get(row.customer_key)
            if c is not None and c.tenant_id == row.tenant_id:
                c.open_case = OpenCase(
                    row.case_id,
                    CaseKind(row.kind),
                    CaseStatus(row.status),
                    Band(row.segment),
                    row.priority,
                    row.store_id,
                    list(row.themes),
                    list(row.flags),
                )
        return out

    async def stored_feedback(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StoredFeedback]:
        """The answers, each with the case it opened or joined (whatever that case's status now)."""
        stmt = (
            select(FeedbackRow, CaseRow)
            .outerjoin(CaseRow, CaseRow.case_id == FeedbackRow.case_id)
            .where(FeedbackRow.feedback_event_id.in_(list(ids)))
        )
        out = {}
        for r, own in (await self.session.execute(stmt)).all():
            out[r.feedback_event_id] = StoredFeedback(
                r.feedback_event_id,
                r.tenant_id,
                r.customer_key,
                r.score,
                Band(r.band),
                r.store_id,
                Channel(r.channel),
                r.comment,
                r.contact,
                r.consent_to_contact,
                r.locale,
                r.case_id,
                list(r.requested),
                list(r.rules),
                list(r.themes),
                list(r.flags),
                _open_case(own) if own is not None else None,
            )
        return out

    def add_feedback(self, row: dict[str, Any]) -> None:
        self._feedback.append(_clean(row))

    def update_feedback(self, feedback_event_id: uuid.UUID, values: dict[str, Any]) -> None:
        self._feedback_updates.setdefault(feedback_event_id, {}).update(_clean(values))

    def open_case(self, row: dict[str, Any]) -> None:
        self._cases.append(_clean(row))

    def update_case(self, case_id: uuid.UUID, values: dict[str, Any]) -> None:
        self._case_updates.setdefault(case_id, {}).update(values)

    def add_timeline(self, case_id: uuid.UUID, entry: str, detail: dict[str, Any], actor: str | None = None) -> None:
        self._timeline.append({"case_id": case_id, "entry": entry, "detail": detail, "actor": actor})

    def save_customer(self, c: Customer) -> None:
        self._customers[c.customer_key] = {
            "customer_key": c.customer_key,
            "tenant_id": c.tenant_id,
            "customer_id": c.customer_id,
            "current_band": str(c.current_band),
            "previous_band": str(c.previous_band) if c.previous_band else None,
            "last_score": c.last_score,
            "answers": c.answers,
            "at_risk": c.at_risk,
            "at_risk_since": c.at_risk_since,
            "was_detractor": c.was_detractor,
            "recovered": c.recovered,
            "recovered_at": c.recovered_at,
            "surprise_pending": c.surprise_set_now,
            "surprise_reason": c.surprise_reason,
            "surprise_set_at": c.surprise_set_at,
            "last_store_id": pg_text(c.last_store_id),
            "first_seen_at": c.first_seen_at,
            "last_seen_at": c.last_seen_at,
        }

    async def mark_cases(self, changes: Sequence[CaseChange]) -> dict[uuid.UUID, CaseRef]:
        if not changes:
            return {}
        await self.flush()  # a case opened earlier in this batch must be visible to the update
        contacted: dict[uuid.UUID, Any] = {}
        for c in changes:
            if c.contacted:
                contacted[c.case_id] = min(c.at, contacted.get(c.case_id, c.at))
        ids = list(dict.fromkeys(c.case_id for c in changes))
        # A custom plan for this statement, in this transaction: it takes its ids as an array, which
        # a generic plan counts as 10 rows. One made while the table was small (a sequential scan)
        # stayed until the next ANALYZE: with 150,000 cases, 53 ms a statement instead of ~1
        # (bench/README.md). For this statement only: elsewhere, planning each call costs more.
        await custom_plans(self.session)
        result = await self.session.execute(
            text(MARK_CASES_SQL),
            {"ids": ids, "ats": [contacted.get(i) for i in ids]},
        )
        known = {
            r.case_id: CaseRef(r.case_id, CaseStatus(r.status), r.store_id, r.customer_key, bool(r.first_contact))
            for r in result
        }
        self._timeline += [
            {"case_id": c.case_id, "entry": c.entry, "detail": c.detail, "actor": None}
            for c in changes
            if c.case_id in known
        ]
        return known

    def add_outbox(self, event: Envelope, key: str) -> None:
        self._outbox.append(
            {"topic": topic_for(event), "key": key, "event_id": event.event_id, "value": serialize_event(event)}
        )
        self.outbox_added += 1

    async def flush(self) -> None:
        """Send what was collected as bulk statements (parents before children).

        Inserts go through Core tables: one multi-row statement per table, no ORM bookkeeping.
        """
        if self._feedback:
            stmt = pg_insert(FEEDBACK).on_conflict_do_nothing(index_elements=[FEEDBACK.c.feedback_event_id])
            await self.session.execute(stmt, self._feedback)
        if self._cases:
            rows = sorted(self._cases, key=lambda r: (r["tenant_id"], r["customer_key"]))  # lock order: no deadlock
            opening = (
                pg_insert(CASES)
                .on_conflict_do_nothing(
                    index_elements=[CASES.c.tenant_id, CASES.c.customer_key],
                    index_where=text("status IN ('open', 'contacted')"),
                )
                .returning(CASES.c.case_id)
            )
            inserted = set((await self.session.execute(opening, rows)).scalars())
            if len(inserted) < len(rows):
                raise OpenCaseRace(f"{len(rows) - len(inserted)} customer(s) got an open case from another writer")
        if self._feedback_updates:
            await self.session.execute(
                update(FeedbackRow), [{"feedback_event_id": k, **v} for k, v in self._feedback_updates.items()]
            )
        if self._case_updates:
            await self.session.execute(update(CaseRow), [{"case_id": k, **v} for k, v in self._case_updates.items()])
        if self._timeline:
            await self.session.execute(insert(TIMELINE), self._timeline)
        if self._customers:
            stmt = pg_insert(CUSTOMERS)
            ex, t = stmt.excluded, CUSTOMERS.c
            keep = {
                "customer_key",
                "tenant_id",
                "first_seen_at",
                "surprise_pending",
                "surprise_reason",
                "surprise_set_at",
            }
            cols: dict[str, Any] = {c.name: ex[c.name] for c in CUSTOMERS.columns if c.name not in keep}
            cols |= {
                "surprise_pending": t.surprise_pending | ex.surprise_pending,
                "surprise_reason": case((ex.surprise_pending, ex.surprise_reason), else_=t.surprise_reason),
                "surprise_set_at": case((ex.surprise_pending, ex.surprise_set_at), else_=t.surprise_set_at),
            }
            rows = sorted(self._customers.values(), key=lambda r: r["customer_key"])
            await self.session.execute(stmt.on_conflict_do_update(index_elements=[t.customer_key], set_=cols), rows)
        if self._outbox:
            await self.session.execute(insert(OUTBOX), self._outbox)
        self._feedback, self._cases, self._timeline, self._outbox = [], [], [], []
        self._feedback_updates, self._case_updates, self._customers = {}, {}, {}


def _open_case(row: CaseRow) -> OpenCase:
    return OpenCase(
        row.case_id,
        CaseKind(row.kind),
        CaseStatus(row.status),
        Band(row.segment),
        row.priority,
        row.store_id,
        list(row.themes),
        list(row.flags),
    )


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: pg_text(v) if isinstance(v, str) else v for k, v in row.items()}
