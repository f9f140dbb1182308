"""Delivery reports from the notifier on a case's timeline. No Kafka, no SQL.

A sent call task is the case's contact (status `contacted`, the first one timed for the
closed-loop figures) unless the policy's `call_task_counts_as_contact` is false, when only a
contact recorded through the API counts; any other report (an acknowledgement sent, a failed or suppressed
delivery) is a timeline entry and a `note_added`.
"""

from __future__ import annotations

from collections.abc import Sequence

from npsloop_schemas import (
    CaseChange as Change,
)
from npsloop_schemas import (
    CaseUpdatedPayloadV1,
    CaseUpdatedV1,
    DeliveryStatus,
    NotificationKind,
    NotificationStatusV1,
    derive_id,
)

from .context import Context
from .handlers import first_time
from .ports import ActionsRepository, CaseChange


async def handle_status(
    items: Sequence[tuple[NotificationStatusV1, str]], repo: ActionsRepository, ctx: Context
) -> None:
    """The key is the message key, the customer key, so case events stay ordered per customer."""
    now = ctx.clock()
    reports = [(e, k) for e, k in await first_time(items, repo) if e.payload.case_id is not None]
    changes = []
    for event, _ in reports:
        s = event.payload
        assert s.case_id is not None
        contacted = (
            s.kind is NotificationKind.CALL_TASK
            and s.status is DeliveryStatus.SENT
            and ctx.policy.sla.call_task_counts_as_contact
        )
        detail = {"kind": str(s.kind), "status": str(s.status), "reason": s.reason or ""}
        changes.append(CaseChange(s.case_id, f"delivery_{s.status}", contacted, now, detail))
    known = await repo.mark_cases(changes)
    for (event, key), change in zip(reports, changes, strict=True):
        ref = known.get(change.case_id)
        if ref is None:
            continue
        s = event.payload
        repo.add_outbox(
            CaseUpdatedV1.following(
                event,
                event_id=derive_id("case.updated", event.event_id),
                source=ctx.source,
                occurred_at=now,
                payload=CaseUpdatedPayloadV1(
                    case_id=change.case_id,
                    status=ref.status,
                    note=f"{s.kind} {s.status}" + (f": {s.reason}" if s.reason else ""),
                    change=Change.CONTACTED if change.contacted else Change.NOTE_ADDED,
                    store_id=ref.store_id,
                    customer_key=ref.customer_key,
                    actor=ctx.source,
                ),
            ),
            key,
        )
