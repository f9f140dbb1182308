"""Domain logic of actions: which feedback opens a case and who gets contacted. No Kafka, no SQL.

Each handler runs inside one unit of work: inbox row, case change and outbox rows commit together.
"""

from __future__ import annotations

import uuid

from npsloop_schemas import (
    Band,
    CaseOpenedPayloadV1,
    CaseOpenedV1,
    CaseStatus,
    CaseUpdatedPayloadV1,
    CaseUpdatedV1,
    Contact,
    DeliveryStatus,
    FeedbackClassifiedV1,
    NotificationKind,
    NotificationRequestedPayloadV1,
    NotificationRequestedV1,
    NotificationStatusV1,
    customer_key,
)

from .ports import ActionsRepository

LINEAGE = uuid.UUID("0b6f7a4e-2d55-4a3c-9e1f-7c8d9e0f1a2b")


def derived_id(kind: str, source: uuid.UUID) -> uuid.UUID:
    """Deterministic ids: reprocessing the same input can never open a second case."""
    return uuid.uuid5(LINEAGE, f"{kind}:{source}")


def _notification(
    event: FeedbackClassifiedV1, kind: NotificationKind, key: str, source: str, case_id: uuid.UUID | None
) -> NotificationRequestedV1:
    fb = event.payload.feedback
    return NotificationRequestedV1.following(
        event,
        event_id=derived_id(f"notification:{kind}", event.payload.feedback_event_id),
        source=source,
        payload=NotificationRequestedPayloadV1(
            delivery_id=derived_id(f"delivery:{kind}", event.payload.feedback_event_id),
            kind=kind,
            customer_key=key,
            recipient=fb.contact or Contact(),
            feedback_event_id=event.payload.feedback_event_id,
            case_id=case_id,
            score=fb.score,
            store_id=fb.store_id,
            comment=fb.comment,
        ),
    )


async def handle_classified(event: FeedbackClassifiedV1, repo: ActionsRepository, source: str) -> None:
    if not await repo.claim_inbox(event.event_id, event.type_tag):
        return
    fb = event.payload.feedback
    key = customer_key(event.tenant_id, fb.customer_id, event.payload.feedback_event_id)
    await repo.add_feedback(event, key)
    may_contact = fb.consent_to_contact
    if event.payload.band is Band.DETRACTOR:
        case_id = derived_id("case", event.payload.feedback_event_id)
        reason = f"detractor (score {fb.score})"
        await repo.open_case(case_id, event, key, reason)
        await repo.add_outbox(
            CaseOpenedV1.following(
                event,
                event_id=derived_id("case.opened", case_id),
                source=source,
                payload=CaseOpenedPayloadV1(
                    case_id=case_id,
                    feedback_event_id=event.payload.feedback_event_id,
                    customer_key=key,
                    segment=event.payload.band,
                    score=fb.score,
                    store_id=fb.store_id,
                    channel=fb.channel,
                    comment=fb.comment,
                    reason=reason,
                ),
            ),
            key,
        )
        if may_contact:
            await repo.add_outbox(_notification(event, NotificationKind.CALL_TASK, key, source, case_id), key)
    elif event.payload.band is Band.PROMOTER and may_contact and fb.contact and fb.contact.email:
        await repo.add_outbox(_notification(event, NotificationKind.THANK_YOU_EMAIL, key, source, None), key)


async def handle_status(event: NotificationStatusV1, repo: ActionsRepository, source: str, key: str) -> None:
    """A delivery report: a sent call task moves its case to 'contacted' (case timeline).

    `key` is the message key, the customer key, so case events stay ordered per customer.
    """
    if not await repo.claim_inbox(event.event_id, event.type_tag):
        return
    status = event.payload
    if status.case_id is None:
        return
    contacted = status.status is DeliveryStatus.SENT
    detail = {"kind": str(status.kind), "status": str(status.status), "reason": status.reason or ""}
    new_status = CaseStatus.CONTACTED if contacted else CaseStatus.OPEN
    if not await repo.mark_case(status.case_id, new_status, f"delivery_{status.status}", detail):
        return
    await repo.add_outbox(
        CaseUpdatedV1.following(
            event,
            event_id=derived_id("case.updated", event.event_id),
            source=source,
            payload=CaseUpdatedPayloadV1(
                case_id=status.case_id,
                status=new_status,
                note=f"{status.kind} {status.status}" + (f": {status.reason}" if status.reason else ""),
            ),
        ),
        key,
    )
