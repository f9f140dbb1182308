"""Events as the other services publish them, built from the schema models: the demo's quarter
and the tests' hand-computed cases use the same constructors."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from npsloop_schemas import (
    CaseClosedPayloadV1,
    CaseClosedV1,
    CaseOpenedPayloadV1,
    CaseOpenedV1,
    CaseUpdatedPayloadV1,
    CaseUpdatedV1,
    FeedbackClassifiedV1,
    FeedbackReceivedPayloadV1,
    FeedbackReclassifiedPayloadV1,
    FeedbackReclassifiedV1,
    FeedbackUpdatedPayloadV1,
    NotificationStatusPayloadV1,
    NotificationStatusV1,
    band_for,
)

SOURCE = "npsloop-samples"


def _ids(event_id: uuid.UUID | None = None) -> dict[str, Any]:
    eid = event_id or uuid.uuid4()
    return {"event_id": eid, "correlation_id": eid, "source": SOURCE}


def classified(
    at: datetime,
    score: int,
    *,
    tenant: str = "acme",
    store: str | None = "berlin-1",
    channel: str = "pos",
    comment: str | None = None,
    customer: str | None = None,
    themes: list[tuple[str, str, float]] | None = None,
    language: str | None = None,
    feedback_event_id: uuid.UUID | None = None,
) -> FeedbackClassifiedV1:
    fid = feedback_event_id or uuid.uuid4()
    themes = themes or []
    sentiment = None
    if comment:
        compound = sum(c for _, _, c in themes) / len(themes) if themes else 0.0
        label = "positive" if compound > 0.05 else "negative" if compound < -0.05 else "neutral"
        sentiment = {"label": label, "compound": compound, "model": "samples"}
    return FeedbackClassifiedV1.model_validate(
        {
            **_ids(),
            "occurred_at": at,
            "tenant_id": tenant,
            "payload": {
                "feedback_event_id": fid,
                "feedback": FeedbackReceivedPayloadV1.model_validate(
                    {"score": score, "comment": comment, "customer_id": customer, "store_id": store, "channel": channel}
                ),
                "band": band_for(score),
                "sentiment": sentiment,
                "themes": [t for t, _, _ in themes],
                "theme_sentiments": [{"theme": t, "label": lb, "compound": c} for t, lb, c in themes],
                "language": language,
            },
        }
    )


def reclassified(
    original: FeedbackClassifiedV1,
    at: datetime,
    comment: str,
    themes: list[tuple[str, str, float]] | None = None,
    language: str | None = "de",
) -> FeedbackReclassifiedV1:
    """A late comment on `original`, classified (by default: about the staff, positive, in German)."""
    themes = [("staff", "positive", 0.7)] if themes is None else themes
    update = FeedbackUpdatedPayloadV1(
        feedback_event_id=original.payload.feedback_event_id, fields=["comment"], comment=comment
    )
    return FeedbackReclassifiedV1.model_validate(
        {
            **_ids(),
            "correlation_id": original.correlation_id,
            "occurred_at": at,
            "tenant_id": original.tenant_id,
            "payload": FeedbackReclassifiedPayloadV1(
                feedback_event_id=original.payload.feedback_event_id,
                update_event_id=uuid.uuid4(),
                update=update,
                themes=[t for t, _, _ in themes],
                theme_sentiments=[{"theme": t, "label": lb, "compound": c} for t, lb, c in themes],
                language=language,
            ),
        }
    )


def customer_key_of(event: FeedbackClassifiedV1) -> str:
    cid = event.payload.feedback.customer_id
    return f"{event.tenant_id}:{cid}" if cid else f"{event.tenant_id}:anon:{event.payload.feedback_event_id}"


def opened(
    feedback: FeedbackClassifiedV1, at: datetime, *, sla_due_at: datetime | None = None, priority: int | None = None
) -> CaseOpenedV1:
    fb = feedback.payload.feedback
    return CaseOpenedV1.model_validate(
        {
            **_ids(),
            "occurred_at": at,
            "tenant_id": feedback.tenant_id,
            "payload": CaseOpenedPayloadV1(
                case_id=uuid.uuid5(uuid.NAMESPACE_URL, f"case:{feedback.payload.feedback_event_id}"),
                feedback_event_id=feedback.payload.feedback_event_id,
                customer_key=customer_key_of(feedback),
                segment=feedback.payload.band,
                score=fb.score,
                store_id=fb.store_id,
                channel=fb.channel,
                comment=fb.comment,
                reason=f"detractor (score {fb.score})",
                priority=priority,
                sla_due_at=sla_due_at,
            ),
        }
    )


def updated(case: CaseOpenedV1, at: datetime, change: str, status: str, **extra: Any) -> CaseUpdatedV1:
    p = case.payload
    return CaseUpdatedV1.model_validate(
        {
            **_ids(),
            "occurred_at": at,
            "tenant_id": case.tenant_id,
            "payload": CaseUpdatedPayloadV1.model_validate(
                {
                    "case_id": p.case_id,
                    "status": status,
                    "change": change,
                    "store_id": p.store_id,
                    "customer_key": p.customer_key,
                    **extra,
                }
            ),
        }
    )


def closed(case: CaseOpenedV1, at: datetime, root_cause: str | None = None, outcome: str | None = None) -> CaseClosedV1:
    p = case.payload
    return CaseClosedV1.model_validate(
        {
            **_ids(),
            "occurred_at": at,
            "tenant_id": case.tenant_id,
            "payload": CaseClosedPayloadV1(
                case_id=p.case_id,
                resolution=outcome or "closed",
                store_id=p.store_id,
                customer_key=p.customer_key,
                root_cause=root_cause,
                outcome=outcome,
            ),
        }
    )


def status(feedback: FeedbackClassifiedV1, at: datetime, kind: str, state: str = "sent") -> NotificationStatusV1:
    return NotificationStatusV1.model_validate(
        {
            **_ids(),
            "occurred_at": at,
            "tenant_id": feedback.tenant_id,
            "payload": NotificationStatusPayloadV1.model_validate(
                {
                    "delivery_id": uuid.uuid4(),
                    "kind": kind,
                    "status": state,
                    "attempts": 1,
                    "feedback_event_id": feedback.payload.feedback_event_id,
                }
            ),
        }
    )


async def fold_into(db: Any, stores: Any, events: Any, default_sla_s: float = 48 * 3600) -> int:
    """Fold `events` in one transaction, as one consumed batch would (tests and the demo)."""
    from npsloop_platform.uow import SqlUnitOfWork

    from .handlers import fold
    from .repository import SqlReportingRepository

    items = []
    for e in events:
        key = getattr(e.payload, "customer_key", None)
        if key is None and isinstance(e, FeedbackClassifiedV1):
            key = customer_key_of(e)
        items.append((e, key or e.tenant_id))
    async with SqlUnitOfWork(db) as uow:
        n = await fold(items, stores, SqlReportingRepository(uow.session), default_sla_s)
        await uow.commit()
    return n
