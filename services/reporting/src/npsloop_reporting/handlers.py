"""The fold: events in, read-model rows out. No Kafka, no HTTP; storage behind `ReportingRepository`.

Every fold is idempotent by event_id (the inbox) and commutative where events may arrive in any
order (a case's first contact is the earliest `contacted`, its status the latest one), so a replay
from the earliest offsets gives the same tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from npsloop_platform.logging import mask_pii
from npsloop_platform.stores import StoreDirectory
from npsloop_schemas import (
    Band,
    CaseChange,
    CaseClosedV1,
    CaseOpenedV1,
    CaseSlaBreachedV1,
    CaseSlaWarningV1,
    CaseStatus,
    CaseUpdatedV1,
    Envelope,
    FeedbackClassifiedV1,
    FeedbackReclassifiedV1,
    NotificationStatusV1,
    SentimentLabel,
    ThemeSentiment,
)

from .ports import ReportingRepository, Text

FOLDED: tuple[type[Envelope], ...] = (
    FeedbackClassifiedV1,
    FeedbackReclassifiedV1,
    CaseOpenedV1,
    CaseUpdatedV1,
    CaseClosedV1,
    CaseSlaWarningV1,
    CaseSlaBreachedV1,
    NotificationStatusV1,
)


def pg_text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL: another producer's NUL becomes U+FFFD, not a poison batch."""
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


def redacted(comment: str | None) -> str | None:
    """Comments are shown to staff and mailed in digests: emails and phone numbers masked."""
    return pg_text(mask_pii(comment)) if comment else comment


def local(at: datetime, stores: StoreDirectory, tenant_id: str, store_id: str | None) -> datetime:
    """`at` on the store's wall clock (naive), for day/week/month buckets in the store's calendar."""
    return at.astimezone(stores.zone(tenant_id, store_id)).replace(tzinfo=None)


def _themes(
    themes: Sequence[str], sentiments: Sequence[ThemeSentiment], overall: SentimentLabel | None
) -> list[tuple[str, str | None, float | None]]:
    out: dict[str, tuple[str, str | None, float | None]] = {}
    for ts in sentiments:
        name = pg_text(ts.theme[:128]) or ""
        out[name] = (name, str(ts.label), ts.compound)
    for theme in themes:
        name = pg_text(theme[:128]) or ""
        out.setdefault(name, (name, str(overall) if overall else None, None))
    return list(out.values())


def fold_classified(event: FeedbackClassifiedV1, key: str, stores: StoreDirectory, repo: ReportingRepository) -> None:
    p, fb = event.payload, event.payload.feedback
    store = stores.store(event.tenant_id, fb.store_id)
    label = p.sentiment.label if p.sentiment else None
    text = Text(
        p.feedback_event_id,
        event.occurred_at,
        redacted(fb.comment),
        pg_text(p.language),
        str(label) if label else None,
        _themes(p.themes, p.theme_sentiments, label),
    )
    row = {
        "feedback_event_id": p.feedback_event_id,
        "tenant_id": event.tenant_id,
        "store_id": pg_text(fb.store_id),
        "region": store.region,
        "channel": str(fb.channel),
        "customer_key": pg_text(key),
        "score": fb.score,
        "band": str(p.band),
        "occurred_at": event.occurred_at,
        "local_at": local(event.occurred_at, stores, event.tenant_id, fb.store_id),
    }
    repo.add_response(row, text)


def fold_reclassified(event: FeedbackReclassifiedV1, repo: ReportingRepository) -> None:
    p = event.payload
    label = p.sentiment.label if p.sentiment else None
    text = Text(
        p.feedback_event_id,
        event.occurred_at,
        redacted(p.update.comment),
        pg_text(p.language),
        str(label) if label else None,
        _themes(p.themes, p.theme_sentiments, label),
        set_comment="comment" in p.update.fields,
    )
    repo.replace_text(event.tenant_id, text)


def _case(event: Envelope, case_id: Any, store_id: str | None, stores: StoreDirectory, **facts: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "case_id": case_id,
        "tenant_id": event.tenant_id,
        "store_id": pg_text(store_id),
        "region": stores.store(event.tenant_id, store_id).region if store_id else None,
        "customer_key": None,
        "feedback_event_id": None,
        "kind": None,
        "segment": None,
        "score": None,
        "priority": None,
        "reason": None,
        "comment": None,
        "status": None,
        "status_at": None,
        "opened_at": None,
        "opened_local": None,
        "sla_due_at": None,
        "first_contact_at": None,
        "resolved_at": None,
        "closed_at": None,
        "sla_warned_at": None,
        "sla_breached_at": None,
        "root_cause": None,
        "outcome": None,
    }
    row.update(facts)
    for col in ("priority", "root_cause", "outcome"):
        row[f"{col}_at"] = event.occurred_at if row[col] is not None else None
    return row


def fold_case(event: Envelope, stores: StoreDirectory, default_sla_s: float, repo: ReportingRepository) -> None:
    at = event.occurred_at
    if isinstance(event, CaseOpenedV1):
        p = event.payload
        due = p.sla_due_at
        if due is None and p.segment is Band.DETRACTOR:
            from datetime import timedelta

            due = at + timedelta(seconds=default_sla_s)
        row = _case(
            event,
            p.case_id,
            p.store_id,
            stores,
            customer_key=pg_text(p.customer_key),
            feedback_event_id=p.feedback_event_id,
            kind=str(p.kind),
            segment=str(p.segment),
            score=p.score,
            priority=p.priority,
            reason=pg_text(p.reason),
            comment=redacted(p.comment),
            status=str(CaseStatus.OPEN),
            status_at=at,
            opened_at=at,
            opened_local=local(at, stores, event.tenant_id, p.store_id),
            sla_due_at=due,
        )
    elif isinstance(event, CaseUpdatedV1):
        u = event.payload
        change = u.change
        contacted = change is CaseChange.CONTACTED or (change is None and u.status is CaseStatus.CONTACTED)
        resolved = change is CaseChange.RESOLVED or (change is None and u.status is CaseStatus.RESOLVED)
        row = _case(
            event,
            u.case_id,
            u.store_id,
            stores,
            customer_key=pg_text(u.customer_key),
            status=str(u.status),
            status_at=at,
            priority=u.priority,
            first_contact_at=at if contacted else None,
            resolved_at=at if resolved else None,
            root_cause=pg_text(u.root_cause),
            outcome=pg_text(u.outcome),
        )
    elif isinstance(event, CaseClosedV1):
        c = event.payload
        row = _case(
            event,
            c.case_id,
            c.store_id,
            stores,
            customer_key=pg_text(c.customer_key),
            status=str(CaseStatus.CLOSED),
            status_at=at,
            resolved_at=at,
            closed_at=at,
            root_cause=pg_text(c.root_cause),
            outcome=pg_text(c.outcome or c.resolution),
        )
    elif isinstance(event, CaseSlaWarningV1 | CaseSlaBreachedV1):
        s = event.payload
        breach = isinstance(event, CaseSlaBreachedV1)
        row = _case(
            event,
            s.case_id,
            s.store_id,
            stores,
            customer_key=pg_text(s.customer_key),
            sla_due_at=s.due_at,
            sla_warned_at=None if breach else at,
            sla_breached_at=at if breach else None,
        )
    else:  # pragma: no cover - the consumer registers only the types above
        raise TypeError(type(event).__name__)
    repo.merge_case(row)


def fold_status(event: NotificationStatusV1, repo: ReportingRepository) -> None:
    p = event.payload
    repo.add_delivery(
        {
            "delivery_id": p.delivery_id,
            "tenant_id": event.tenant_id,
            "kind": str(p.kind),
            "status": str(p.status),
            "feedback_event_id": p.feedback_event_id,
            "case_id": p.case_id,
            "at": event.occurred_at,
        }
    )


async def fold(
    items: Sequence[tuple[Envelope, str]], stores: StoreDirectory, repo: ReportingRepository, default_sla_s: float
) -> int:
    """Fold events in the order given (poll order per partition); returns how many were new."""
    new = await repo.claim_inbox([e for e, _ in items])
    folded = 0
    for event, key in items:
        if event.event_id not in new:
            continue
        new.discard(event.event_id)  # the same event twice in one batch folds once
        folded += 1
        if isinstance(event, FeedbackClassifiedV1):
            fold_classified(event, key, stores, repo)
        elif isinstance(event, FeedbackReclassifiedV1):
            fold_reclassified(event, repo)
        elif isinstance(event, NotificationStatusV1):
            fold_status(event, repo)
        else:
            fold_case(event, stores, default_sla_s, repo)
    await repo.flush()
    return folded
