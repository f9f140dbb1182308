"""SQL implementation of the ActionsRepository port, inside the batch's one AsyncSession transaction.

Writes are collected and sent as bulk statements by `flush()` (SQLAlchemy's insertmanyvalues
pages them, so no statement outgrows PostgreSQL's parameter limit). Outbox rows are inserted in
the order they were added, so their ids, and hence the relay's publishing order, follow it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop_schemas import CaseStatus, Envelope, FeedbackClassifiedV1, serialize_event, topic_for

from .models import CaseRow, CaseTimelineRow, FeedbackRow, InboxRow, OutboxRow
from .ports import CaseChange


def pg_text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL: another producer's NUL becomes U+FFFD instead of a poison batch."""
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


class SqlActionsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._feedback: list[dict[str, Any]] = []
        self._cases: list[dict[str, Any]] = []
        self._timeline: list[dict[str, Any]] = []
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

    def add_feedback(self, event: FeedbackClassifiedV1, customer_key: str) -> None:
        p, fb = event.payload, event.payload.feedback
        self._feedback.append(
            {
                "feedback_event_id": p.feedback_event_id,
                "tenant_id": event.tenant_id,
                "customer_key": pg_text(customer_key),
                "score": fb.score,
                "band": str(p.band),
                "sentiment_label": str(p.sentiment.label) if p.sentiment else None,
                "sentiment_compound": p.sentiment.compound if p.sentiment else None,
                "themes": list(p.themes),
                "flags": list(p.flags),
                "comment": pg_text(fb.comment),
                "store_id": pg_text(fb.store_id),
                "channel": str(fb.channel),
                "occurred_at": event.occurred_at,
            }
        )

    def open_case(self, case_id: uuid.UUID, event: FeedbackClassifiedV1, customer_key: str, reason: str) -> None:
        self._cases.append(
            {
                "case_id": case_id,
                "tenant_id": event.tenant_id,
                "feedback_event_id": event.payload.feedback_event_id,
                "segment": str(event.payload.band),
                "status": str(CaseStatus.OPEN),
                "reason": reason,
                "store_id": pg_text(event.payload.feedback.store_id),
                "customer_key": pg_text(customer_key),
            }
        )
        self._timeline.append({"case_id": case_id, "entry": "opened", "detail": {"reason": reason}})

    async def mark_cases(self, changes: Sequence[CaseChange]) -> set[uuid.UUID]:
        if not changes:
            return set()
        await self.flush()  # a case opened earlier in this batch must be visible to the update
        final = {c.case_id: c.status for c in changes}  # the last change of a case wins
        result = await self.session.execute(
            text(
                "UPDATE actions.cases AS c SET status = v.status, updated_at = now() "
                "FROM unnest(CAST(:ids AS uuid[]), CAST(:statuses AS text[])) AS v(case_id, status) "
                "WHERE c.case_id = v.case_id RETURNING c.case_id"
            ),
            {"ids": list(final), "statuses": list(final.values())},
        )
        known = set(result.scalars())
        self._timeline += [
            {"case_id": c.case_id, "entry": c.entry, "detail": c.detail} for c in changes if c.case_id in known
        ]
        return known

    def add_outbox(self, event: Envelope, key: str) -> None:
        self._outbox.append(
            {"topic": topic_for(event), "key": key, "event_id": event.event_id, "value": serialize_event(event)}
        )
        self.outbox_added += 1

    async def flush(self) -> None:
        """Send what was collected as bulk statements (parents before children)."""
        if self._feedback:
            stmt = pg_insert(FeedbackRow).on_conflict_do_nothing(index_elements=[FeedbackRow.feedback_event_id])
            await self.session.execute(stmt, self._feedback)
        if self._cases:
            await self.session.execute(pg_insert(CaseRow).on_conflict_do_nothing(), self._cases)
        if self._timeline:
            await self.session.execute(insert(CaseTimelineRow), self._timeline)
        if self._outbox:
            await self.session.execute(insert(OutboxRow), self._outbox)
        self._feedback, self._cases, self._timeline, self._outbox = [], [], [], []


async def list_cases(
    session: AsyncSession, tenant_id: str, stores: frozenset[str] | None, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest cases of a tenant, limited to `stores` (None: all) in the query itself."""
    stmt = select(CaseRow).where(CaseRow.tenant_id == tenant_id)
    if stores is not None:
        stmt = stmt.where(CaseRow.store_id.in_(sorted(stores)))
    rows = (await session.execute(stmt.order_by(CaseRow.opened_at.desc()).limit(limit))).scalars()
    return [
        {
            "case_id": str(r.case_id),
            "feedback_event_id": str(r.feedback_event_id),
            "segment": r.segment,
            "status": r.status,
            "reason": r.reason,
            "store_id": r.store_id,
            "opened_at": r.opened_at.isoformat(),
            "updated_at": r.updated_at.isoformat(),
        }
        for r in rows
    ]


async def band_counts(
    session: AsyncSession, tenant_id: str, store_id: str | None, stores: frozenset[str] | None = None
) -> dict[str, int]:
    stmt = select(FeedbackRow.band, func.count()).where(FeedbackRow.tenant_id == tenant_id)
    if store_id is not None:
        stmt = stmt.where(FeedbackRow.store_id == store_id)
    if stores is not None:
        stmt = stmt.where(FeedbackRow.store_id.in_(sorted(stores)))
    rows = (await session.execute(stmt.group_by(FeedbackRow.band))).all()
    return {band: int(n) for band, n in rows}
