"""Domain logic of actions: which feedback opens a case and who gets contacted. No Kafka, no SQL.

Handlers take a batch of `(event, customer key)` in consumption order. The whole batch runs in
one unit of work: inbox rows, feedback, case changes and outbox rows commit together.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TypeVar

from npsloop_schemas import (
    Band,
    CaseOpenedPayloadV1,
    CaseOpenedV1,
    CaseStatus,
    CaseUpdatedPayloadV1,
    CaseUpdatedV1,
    Contact,
    DeliveryStatus,
    Envelope,
    FeedbackClassifiedV1,
    NotificationKind,
    NotificationRequestedPayloadV1,
    NotificationRequestedV1,
    NotificationStatusV1,
    derive_id,
)

from .ports import ActionsRepository, CaseChange

E = TypeVar("E", bound=Envelope)


async def first_time(items: Sequence[tuple[E, str]], repo: ActionsRepository) -> list[tuple[E, str]]:
    """The items whose event this service has never consumed: redeliveries and repeats drop out."""
    fresh = await repo.claim_inbox([event for event, _ in items])
    out = []
    for event, key in items:
        if event.event_id in fresh:
            fresh.discard(event.event_id)  # a second copy in the same batch is a repeat too
            out.append((event, key))
    return out


def _notification(
    event: FeedbackClassifiedV1, kind: NotificationKind, key: str, source: str, case_id: uuid.UUID | None
) -> NotificationRequestedV1:
    fb = event.payload.feedback
    return NotificationRequestedV1.following(
        event,
        event_id=derive_id(f"notification:{kind}", event.payload.feedback_event_id),
        source=source,
        payload=NotificationRequestedPayloadV1(
            delivery_id=derive_id(f"delivery:{kind}", event.payload.feedback_event_id),
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


def _follow_up(event: FeedbackClassifiedV1, key: str, repo: ActionsRepository, source: str) -> None:
    fb = event.payload.feedback
    repo.add_feedback(event, key)
    may_contact = fb.consent_to_contact
    if event.payload.band is Band.DETRACTOR:
        case_id = derive_id("case", event.payload.feedback_event_id)
        reason = f"detractor (score {fb.score})"
        repo.open_case(case_id, event, key, reason)
        repo.add_outbox(
            CaseOpenedV1.following(
                event,
                event_id=derive_id("case.opened", case_id),
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
            repo.add_outbox(_notification(event, NotificationKind.CALL_TASK, key, source, case_id), key)
    elif event.payload.band is Band.PROMOTER and may_contact and fb.contact and fb.contact.email:
        repo.add_outbox(_notification(event, NotificationKind.THANK_YOU_EMAIL, key, source, None), key)


async def handle_classified(
    items: Sequence[tuple[FeedbackClassifiedV1, str]], repo: ActionsRepository, source: str
) -> None:
    """Store each new feedback; a detractor opens a case and asks for a call, a promoter is thanked."""
    for event, key in await first_time(items, repo):
        _follow_up(event, key, repo, source)


async def handle_status(
    items: Sequence[tuple[NotificationStatusV1, str]], repo: ActionsRepository, source: str
) -> None:
    """Delivery reports: a sent call task moves its case to 'contacted' (case timeline).

    The key is the message key, the customer key, so case events stay ordered per customer.
    """
    reports = [(e, k) for e, k in await first_time(items, repo) if e.payload.case_id is not None]
    changes = []
    for event, _ in reports:
        status = event.payload
        assert status.case_id is not None
        new_status = CaseStatus.CONTACTED if status.status is DeliveryStatus.SENT else CaseStatus.OPEN
        detail = {"kind": str(status.kind), "status": str(status.status), "reason": status.reason or ""}
        changes.append(CaseChange(status.case_id, str(new_status), f"delivery_{status.status}", detail))
    known = await repo.mark_cases(changes)
    for (event, key), change in zip(reports, changes, strict=True):
        if change.case_id not in known:
            continue
        status = event.payload
        repo.add_outbox(
            CaseUpdatedV1.following(
                event,
                event_id=derive_id("case.updated", event.event_id),
                source=source,
                payload=CaseUpdatedPayloadV1(
                    case_id=change.case_id,
                    status=CaseStatus(change.status),
                    note=f"{status.kind} {status.status}" + (f": {status.reason}" if status.reason else ""),
                ),
            ),
            key,
        )
