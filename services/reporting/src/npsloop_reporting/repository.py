"""SQL implementation of the ReportingRepository port, inside the batch's one transaction.

Writes are collected and sent as bulk statements by `flush()`: answers first, then late texts
(which may concern an answer of this very batch), cases, deliveries.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop_schemas import Envelope

from .models import InboxRow, PendingTextRow, ResponseRow, ResponseThemeRow
from .ports import Text


def _latest(col: str) -> str:
    """`col` from the newest event that carried a value (by event time), and that time."""
    newer = f"excluded.{col} IS NOT NULL AND (c.{col}_at IS NULL OR excluded.{col}_at >= c.{col}_at)"
    return (
        f"    {col} = CASE WHEN {newer} THEN excluded.{col} ELSE c.{col} END,\n"
        f"    {col}_at = CASE WHEN {newer} THEN excluded.{col}_at ELSE c.{col}_at END"
    )


# Commutative merge of one case event into its row; see models.CaseRow.
_MERGE_CASE_SQL = """
INSERT INTO reporting.cases AS c (case_id, tenant_id, store_id, region, customer_key, feedback_event_id, kind,
    segment, score, priority, reason, comment, status, status_at, opened_at, opened_local, sla_due_at,
    first_contact_at, resolved_at, closed_at, sla_warned_at, sla_breached_at, root_cause, outcome,
    priority_at, root_cause_at, outcome_at)
VALUES (:case_id, :tenant_id, :store_id, :region, :customer_key, :feedback_event_id, :kind,
    :segment, :score, :priority, :reason, :comment, coalesce(:status, 'open'), :status_at, :opened_at, :opened_local,
    :sla_due_at, :first_contact_at, :resolved_at, :closed_at, :sla_warned_at, :sla_breached_at, :root_cause, :outcome,
    :priority_at, :root_cause_at, :outcome_at)
ON CONFLICT (case_id) DO UPDATE SET
    store_id = coalesce(c.store_id, excluded.store_id),
    region = coalesce(c.region, excluded.region),
    customer_key = coalesce(c.customer_key, excluded.customer_key),
    feedback_event_id = coalesce(excluded.feedback_event_id, c.feedback_event_id),
    kind = coalesce(excluded.kind, c.kind),
    segment = coalesce(excluded.segment, c.segment),
    score = coalesce(excluded.score, c.score),
{latest_priority},
    reason = coalesce(excluded.reason, c.reason),
    comment = coalesce(excluded.comment, c.comment),
    status = CASE WHEN excluded.status_at IS NOT NULL AND (c.status_at IS NULL OR excluded.status_at >= c.status_at)
                       AND NOT (c.status = 'closed' AND excluded.status <> 'closed'
                                AND excluded.status_at = c.status_at)
                  THEN excluded.status ELSE c.status END,
    status_at = greatest(c.status_at, excluded.status_at),
    opened_at = coalesce(excluded.opened_at, c.opened_at),
    opened_local = coalesce(excluded.opened_local, c.opened_local),
    sla_due_at = CASE WHEN excluded.opened_at IS NOT NULL AND excluded.sla_due_at IS NOT NULL
                      THEN excluded.sla_due_at ELSE coalesce(c.sla_due_at, excluded.sla_due_at) END,
    first_contact_at = least(c.first_contact_at, excluded.first_contact_at),
    resolved_at = least(c.resolved_at, excluded.resolved_at),
    closed_at = least(c.closed_at, excluded.closed_at),
    sla_warned_at = least(c.sla_warned_at, excluded.sla_warned_at),
    sla_breached_at = least(c.sla_breached_at, excluded.sla_breached_at),
{latest_root_cause},
{latest_outcome}
"""
_MERGE_CASE = text(
    _MERGE_CASE_SQL.replace("{latest_priority}", _latest("priority"))
    .replace("{latest_root_cause}", _latest("root_cause"))
    .replace("{latest_outcome}", _latest("outcome"))
)

_MERGE_DELIVERY = text(
    """
INSERT INTO reporting.deliveries AS d (delivery_id, tenant_id, kind, status, feedback_event_id, case_id, at)
VALUES (:delivery_id, :tenant_id, :kind, :status, :feedback_event_id, :case_id, :at)
ON CONFLICT (delivery_id) DO UPDATE SET status = excluded.status, at = excluded.at
WHERE excluded.at >= d.at
"""
)


def _theme_rows(t: Text) -> list[dict[str, Any]]:
    return [
        {"feedback_event_id": t.feedback_event_id, "theme": th, "sentiment": s, "compound": c} for th, s, c in t.themes
    ]


class SqlReportingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._responses: list[dict[str, Any]] = []
        self._themes: list[dict[str, Any]] = []
        self._texts: list[tuple[str, Text]] = []
        self._cases: list[dict[str, Any]] = []
        self._deliveries: list[dict[str, Any]] = []

    async def claim_inbox(self, events: Sequence[Envelope]) -> set[uuid.UUID]:
        if not events:
            return set()
        stmt = (
            pg_insert(InboxRow).on_conflict_do_nothing(index_elements=[InboxRow.event_id]).returning(InboxRow.event_id)
        )
        rows = list({e.event_id: {"event_id": e.event_id, "event_type": e.type_tag} for e in events}.values())
        result = await self.session.execute(stmt, rows)
        return set(result.scalars())

    def add_response(self, row: dict[str, Any], text: Text) -> None:
        self._responses.append(
            {**row, "comment": text.comment, "language": text.language, "sentiment": text.sentiment, "text_at": text.at}
        )
        self._themes += _theme_rows(text)

    def replace_text(self, tenant_id: str, text: Text) -> None:
        self._texts.append((tenant_id, text))

    def merge_case(self, row: dict[str, Any]) -> None:
        self._cases.append(row)

    def add_delivery(self, row: dict[str, Any]) -> None:
        self._deliveries.append(row)

    async def flush(self) -> None:
        s = self.session
        if self._responses:
            ids = [r["feedback_event_id"] for r in self._responses]
            await s.execute(pg_insert(ResponseRow).on_conflict_do_nothing(), self._responses)
            if self._themes:
                await s.execute(pg_insert(ResponseThemeRow).on_conflict_do_nothing(), self._themes)
            pending = (
                (
                    await s.execute(
                        delete(PendingTextRow)
                        .where(PendingTextRow.feedback_event_id.in_(ids))
                        .returning(PendingTextRow)
                    )
                )
                .scalars()
                .all()
            )
            for p in pending:
                themes = [(t[0], t[1], t[2]) for t in json.loads(p.themes)]
                text_ = Text(
                    p.feedback_event_id, p.text_at, p.comment, p.language, p.sentiment, themes, p.comment is not None
                )
                self._texts.insert(0, ("", text_))
        for _tenant, t in self._texts:
            await self._apply_text(t)
        for row in self._cases:
            await s.execute(_MERGE_CASE, row)
        if self._deliveries:
            await s.execute(_MERGE_DELIVERY, self._deliveries)
        self._responses, self._themes, self._texts, self._cases, self._deliveries = [], [], [], [], []

    async def _apply_text(self, t: Text) -> None:
        """Newer text replaces older; a text for an answer not folded yet waits in pending_texts."""
        s = self.session
        found = (
            await s.execute(select(ResponseRow.text_at).where(ResponseRow.feedback_event_id == t.feedback_event_id))
        ).first()
        if found is None:
            stmt = pg_insert(PendingTextRow).values(
                feedback_event_id=t.feedback_event_id,
                comment=t.comment if t.set_comment else None,
                language=t.language,
                sentiment=t.sentiment,
                themes=json.dumps(t.themes),
                text_at=t.at,
            )
            await s.execute(
                stmt.on_conflict_do_update(
                    index_elements=[PendingTextRow.feedback_event_id],
                    set_={c: stmt.excluded[c] for c in ("comment", "language", "sentiment", "themes", "text_at")},
                    where=PendingTextRow.text_at <= stmt.excluded.text_at,
                )
            )
            return
        if found[0] is not None and found[0] > t.at:
            return
        values: dict[str, Any] = {"language": t.language, "sentiment": t.sentiment, "text_at": t.at}
        if t.set_comment:
            values["comment"] = t.comment
        from sqlalchemy import update

        await s.execute(
            update(ResponseRow).where(ResponseRow.feedback_event_id == t.feedback_event_id).values(**values)
        )
        await s.execute(delete(ResponseThemeRow).where(ResponseThemeRow.feedback_event_id == t.feedback_event_id))
        if t.themes:
            await s.execute(pg_insert(ResponseThemeRow).on_conflict_do_nothing(), _theme_rows(t))
