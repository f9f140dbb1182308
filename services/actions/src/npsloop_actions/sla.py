"""The SLA monitor: `case.sla_warning` at `warning_at` of a case's SLA, `case.sla_breached` at 100%,
then up the escalation ladder (store manager, region) every `escalate_every_hours` business hours.

One pass (`run_once`) is one transaction holding a transaction-level advisory lock, so one
replica at a time does the work and the others skip the pass. Each milestone sets its column in
the same transaction as its outbox rows, and the event ids derive from the case and the
milestone, so a pass that dies is redone without doubles. The clock is injected (`ctx.clock`).
A changed SLA in the policy (its fingerprint) is re-applied to open, uncontacted cases first.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from npsloop_platform.component import Background
from npsloop_platform.db import Database
from npsloop_platform.outbox import OutboxRelay
from npsloop_platform.retry import is_transient
from npsloop_schemas import (
    Band,
    CaseChange,
    CaseKind,
    CaseSlaBreachedV1,
    CaseSlaPayloadV1,
    CaseSlaWarningV1,
    CaseStatus,
    CaseUpdatedPayloadV1,
    CaseUpdatedV1,
    Envelope,
    derive_id,
)

from .context import Context
from .models import CaseRow
from .repository import SqlActionsRepository

log = logging.getLogger(__name__)
LOCK = "npsloop-actions-sla-monitor"
PENDING = "status = 'open' AND first_contacted_at IS NULL"
COLUMNS = (
    "case_id, tenant_id, store_id, customer_key, segment, kind, priority, feedback_event_id, opened_at, "
    "sla_started_at, sla_warn_at, sla_due_at, warned_at, breached_at, escalation_level"
)


@dataclass
class PassResult:
    ran: bool = False
    reapplied: int = 0
    warnings: int = 0
    breaches: int = 0
    escalations: int = 0


class SlaMonitor(Background):
    name = "sla-monitor"

    def __init__(self, db: Database, ctx: Context, relay: OutboxRelay | None, poll_s: float = 30, batch: int = 500):
        super().__init__()
        self.db, self.ctx, self.relay, self.poll_s, self.batch = db, ctx, relay, poll_s, batch

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                await self.run_once()
            except Exception as exc:
                if not is_transient(exc):
                    log.exception("SLA monitor pass failed; trying again next pass")
                else:
                    log.warning("SLA monitor: %s: %s; trying again next pass", type(exc).__name__, exc)
            if await self.sleep(self.poll_s):
                return

    async def run_once(self) -> PassResult:
        now, result = self.ctx.clock(), PassResult()
        async with self.db.session() as session, session.begin():
            locked = (
                await session.execute(text("SELECT pg_try_advisory_xact_lock(hashtext(:n))"), {"n": LOCK})
            ).scalar()
            if not locked:
                return result  # another replica is on it
            result.ran = True
            repo = SqlActionsRepository(session)
            result.reapplied = await self._reapply(session, now)
            for row in await self._due(session, "warned_at IS NULL AND sla_warn_at <= :now", now):
                self._milestone(repo, row, now, warning=True)
                await self._set(session, row.case_id, warned_at=now)
                result.warnings += 1
            for row in await self._due(session, "breached_at IS NULL AND sla_due_at <= :now", now):
                self._milestone(repo, row, now, warning=False, level=1)
                ladder = self.ctx.policy.sla.escalation
                nxt = self._next_step(row, row.sla_due_at) if len(ladder) > 1 else None
                await self._set(session, row.case_id, breached_at=now, escalation_level=1, next_escalation_at=nxt)
                result.breaches += 1
            for row in await self._due(session, "next_escalation_at <= :now", now, extra=", next_escalation_at"):
                level = row.escalation_level + 1
                self._milestone(repo, row, now, warning=False, level=level)
                more = level < len(self.ctx.policy.sla.escalation)
                nxt = self._next_step(row, row.next_escalation_at) if more else None
                await self._set(session, row.case_id, escalation_level=level, next_escalation_at=nxt)
                result.escalations += 1
            await repo.flush()
        if self.relay is not None and (result.warnings or result.breaches or result.escalations):
            self.relay.wake()
        return result

    def _next_step(self, row: Any, after: datetime) -> datetime:
        cal = self.ctx.calendar(row.tenant_id, row.store_id)
        return cal.add(after, self.ctx.policy.sla.escalate_every_hours)

    async def _due(self, session: AsyncSession, cond: str, now: datetime, extra: str = "") -> list[Any]:
        sql = (
            f"SELECT {COLUMNS}{extra} FROM actions.cases WHERE {PENDING} AND {cond} "
            "ORDER BY sla_due_at LIMIT :n FOR UPDATE SKIP LOCKED"
        )
        return list(await session.execute(text(sql), {"now": now, "n": self.batch}))

    async def _set(self, session: AsyncSession, case_id: uuid.UUID, **values: Any) -> None:
        await session.execute(update(CaseRow).where(CaseRow.case_id == case_id).values(**values))

    async def _reapply(self, session: AsyncSession, now: datetime) -> int:
        """Cases opened under another SLA get the current one, counted from when their clock started."""
        fp = self.ctx.policy.sla_fingerprint
        sql = (
            f"SELECT {COLUMNS} FROM actions.cases WHERE {PENDING} AND sla_fingerprint IS DISTINCT FROM :fp "
            "LIMIT :n FOR UPDATE SKIP LOCKED"
        )
        rows = list(await session.execute(text(sql), {"fp": fp, "n": self.batch}))
        for row in rows:
            start = row.sla_started_at or row.opened_at
            sla = self.ctx.sla(row.tenant_id, row.store_id, CaseKind(row.kind), start)
            # A milestone already told stays told unless the new SLA moves it into the future.
            if row.warned_at is not None and sla["sla_warn_at"] <= now:
                sla["warned_at"] = row.warned_at
            if row.breached_at is not None and sla["sla_due_at"] <= now:
                del sla["escalation_level"], sla["next_escalation_at"]
                sla["breached_at"] = row.breached_at
            await self._set(session, row.case_id, **sla)
        if rows:
            log.info("SLA monitor: re-applied the current SLA to %d open case(s)", len(rows))
        return len(rows)

    def _escalated_to(self, row: Any, level: int) -> list[str]:
        ladder = self.ctx.policy.sla.escalation
        step = ladder[min(level, len(ladder)) - 1]
        store = self.ctx.stores.store(row.tenant_id, row.store_id)
        if step == "store_manager":
            return [store.manager_email or f"store_manager:{row.store_id or '-'}"]
        region = self.ctx.stores.region(store.region)
        return [(region.manager_email if region else None) or f"region:{store.region or '-'}"]

    def _milestone(self, repo: SqlActionsRepository, row: Any, now: datetime, warning: bool, level: int = 0) -> None:
        escalated_to = [] if warning else self._escalated_to(row, level)
        payload = CaseSlaPayloadV1(
            case_id=row.case_id,
            store_id=row.store_id,
            customer_key=row.customer_key,
            segment=Band(row.segment),
            priority=row.priority,
            opened_at=row.opened_at,
            due_at=row.sla_due_at,
            escalation_level=level,
            escalated_to=escalated_to,
        )
        what = "warning" if warning else f"breach:{level}"
        common: dict[str, Any] = {
            "occurred_at": now,
            "tenant_id": row.tenant_id,
            "source": self.ctx.source,
            "correlation_id": row.feedback_event_id,
        }
        cls: type[Envelope] = CaseSlaWarningV1 if warning else CaseSlaBreachedV1
        event_id = derive_id(f"case.sla:{what}:{row.sla_due_at.isoformat()}", row.case_id)
        event = cls.model_validate({**common, "event_id": event_id, "payload": payload})
        repo.add_outbox(event, row.customer_key)
        entry = "sla_warning" if warning else "sla_breached" if level == 1 else "escalated"
        detail = {"due_at": row.sla_due_at.isoformat(), "level": level, "to": escalated_to}
        repo.add_timeline(row.case_id, entry, detail, actor=self.ctx.source)
        if not warning:
            update_event = CaseUpdatedV1.model_validate(
                {
                    **common,
                    "event_id": derive_id(f"case.updated:escalated:{level}:{row.sla_due_at.isoformat()}", row.case_id),
                    "causation_id": event_id,
                    "payload": CaseUpdatedPayloadV1(
                        case_id=row.case_id,
                        status=CaseStatus.OPEN,
                        change=CaseChange.ESCALATED,
                        note=f"SLA breached: escalated to level {level} ({', '.join(escalated_to)})",
                        store_id=row.store_id,
                        customer_key=row.customer_key,
                        actor=self.ctx.source,
                        priority=row.priority,
                        sla_due_at=row.sla_due_at,
                    ),
                }
            )
            repo.add_outbox(update_event, row.customer_key)
