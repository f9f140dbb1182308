"""SQL implementation of the ActionsRepository port, inside one AsyncSession transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop_schemas import CaseStatus, Envelope, FeedbackClassifiedV1, serialize_event, topic_for

from .models import CaseRow, CaseTimelineRow, FeedbackRow, InboxRow, OutboxRow


class SqlActionsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.outbox_added = 0

    async def claim_inbox(self, event_id: uuid.UUID, event_type: str) -> bool:
        stmt = (
            insert(InboxRow)
            .values(event_id=event_id, event_type=event_type)
            .on_conflict_do_nothing(index_elements=[InboxRow.event_id])
            .returning(InboxRow.event_id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def add_feedback(self, event: FeedbackClassifiedV1, customer_key: str) -> None:
        p, fb = event.payload, event.payload.feedback
        stmt = (
            insert(FeedbackRow)
            .values(
                feedback_event_id=p.feedback_event_id,
                tenant_id=event.tenant_id,
                customer_key=customer_key,
                score=fb.score,
                band=str(p.band),
                sentiment_label=str(p.sentiment.label) if p.sentiment else None,
                sentiment_compound=p.sentiment.compound if p.sentiment else None,
                themes=list(p.themes),
                flags=list(p.flags),
                comment=fb.comment,
                store_id=fb.store_id,
                channel=str(fb.channel),
                occurred_at=event.occurred_at,
            )
            .on_conflict_do_nothing(index_elements=[FeedbackRow.feedback_event_id])
        )
        await self.session.execute(stmt)

    async def open_case(self, case_id: uuid.UUID, event: FeedbackClassifiedV1, customer_key: str, reason: str) -> None:
        stmt = (
            insert(CaseRow)
            .values(
                case_id=case_id,
                tenant_id=event.tenant_id,
                feedback_event_id=event.payload.feedback_event_id,
                customer_key=customer_key,
                segment=str(event.payload.band),
                status=str(CaseStatus.OPEN),
                reason=reason,
                store_id=event.payload.feedback.store_id,
            )
            .on_conflict_do_nothing()
        )
        await self.session.execute(stmt)
        self.session.add(CaseTimelineRow(case_id=case_id, entry="opened", detail={"reason": reason}))

    async def mark_case(self, case_id: uuid.UUID, status: str, entry: str, detail: dict[str, str]) -> bool:
        result = await self.session.execute(
            update(CaseRow)
            .where(CaseRow.case_id == case_id)
            .values(status=str(status), updated_at=func.now())
            .returning(CaseRow.case_id)
        )
        if result.scalar_one_or_none() is None:
            return False
        self.session.add(CaseTimelineRow(case_id=case_id, entry=entry, detail=detail))
        return True

    async def add_outbox(self, event: Envelope, key: str) -> None:
        self.session.add(
            OutboxRow(topic=topic_for(event), key=key, event_id=event.event_id, value=serialize_event(event))
        )
        self.outbox_added += 1


async def list_cases(session: AsyncSession, tenant_id: str, limit: int = 100) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            select(CaseRow).where(CaseRow.tenant_id == tenant_id).order_by(CaseRow.opened_at.desc()).limit(limit)
        )
    ).scalars()
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


async def band_counts(session: AsyncSession, tenant_id: str, store_id: str | None) -> dict[str, int]:
    stmt = select(FeedbackRow.band, func.count()).where(FeedbackRow.tenant_id == tenant_id)
    if store_id is not None:
        stmt = stmt.where(FeedbackRow.store_id == store_id)
    rows = (await session.execute(stmt.group_by(FeedbackRow.band))).all()
    return {band: int(n) for band, n in rows}
