"""The case lifecycle: which change is allowed from which status, and the event it announces.

No HTTP, no SQL: `apply_change` takes the case as it is and the change asked for, and returns
the column values, the timeline entry and the `case.*` event; an invalid transition raises
`InvalidTransition` (the API answers 409), an unknown code `UnknownCode` (422).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from npsloop_schemas import (
    CaseChange,
    CaseClosedPayloadV1,
    CaseClosedV1,
    CaseStatus,
    CaseUpdatedPayloadV1,
    CaseUpdatedV1,
    Envelope,
)

from .policy import Policy

Action = Literal["assign", "note", "contact", "resolve", "close", "reopen"]
OPEN, CONTACTED, RESOLVED, CLOSED = CaseStatus.OPEN, CaseStatus.CONTACTED, CaseStatus.RESOLVED, CaseStatus.CLOSED
ALLOWED: dict[Action, set[CaseStatus]] = {
    "assign": {OPEN, CONTACTED, RESOLVED},
    "note": {OPEN, CONTACTED, RESOLVED, CLOSED},
    "contact": {OPEN, CONTACTED},
    "resolve": {OPEN, CONTACTED},
    "close": {OPEN, CONTACTED, RESOLVED},
    "reopen": {RESOLVED, CLOSED},
}


class InvalidTransition(Exception):
    pass


class UnknownCode(ValueError):
    pass


@dataclass(frozen=True)
class CaseNow:
    case_id: uuid.UUID
    tenant_id: str
    status: CaseStatus
    store_id: str | None
    customer_key: str
    feedback_event_id: uuid.UUID
    priority: int
    first_contacted_at: datetime | None
    root_cause: str | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class Request:
    action: Action
    actor: str
    assignee: str | None = None
    note: str | None = None
    root_cause: str | None = None
    outcome: str | None = None
    resolution: str | None = None
    channel: str | None = None


@dataclass
class Applied:
    values: dict[str, Any]
    entry: str
    detail: dict[str, Any]
    events: list[Envelope] = field(default_factory=list)


def apply_change(case: CaseNow, req: Request, policy: Policy, now: datetime, source: str) -> Applied:
    if case.status not in ALLOWED[req.action]:
        allowed = ", ".join(sorted(ALLOWED[req.action]))
        raise InvalidTransition(f"cannot {req.action} a case that is {case.status} (only when {allowed})")
    values: dict[str, Any] = {"updated_at": now}
    status, change = case.status, CaseChange.NOTE_ADDED
    detail: dict[str, Any] = {"note": req.note} if req.note else {}
    if req.action == "assign":
        values["assignee"], change = req.assignee, CaseChange.ASSIGNED
        detail["assignee"] = req.assignee
    elif req.action == "contact":
        status, change = CONTACTED, CaseChange.CONTACTED
        values["first_contacted_at"] = case.first_contacted_at or now
        detail["channel"] = req.channel or "phone"
    elif req.action == "resolve":
        if req.root_cause not in policy.root_causes:
            raise UnknownCode(f"unknown root_cause {req.root_cause!r}; one of: {', '.join(policy.root_causes)}")
        if req.outcome not in policy.outcomes:
            raise UnknownCode(f"unknown outcome {req.outcome!r}; one of: {', '.join(policy.outcomes)}")
        status, change = RESOLVED, CaseChange.RESOLVED
        values |= {"resolved_at": now, "root_cause": req.root_cause, "outcome": req.outcome}
        detail |= {"root_cause": req.root_cause, "outcome": req.outcome}
    elif req.action == "close":
        status = CLOSED
        values["closed_at"] = now
        detail["resolution"] = req.resolution or "closed"
    elif req.action == "reopen":
        status, change = OPEN, CaseChange.REOPENED
        values |= {"resolved_at": None, "closed_at": None}
    values["status"] = str(status)
    common: dict[str, Any] = {
        "occurred_at": now,
        "tenant_id": case.tenant_id,
        "source": source,
        "correlation_id": case.feedback_event_id,
    }
    event: Envelope
    if req.action == "close":
        event = CaseClosedV1.model_validate(
            {
                **common,
                "event_id": uuid.uuid4(),
                "payload": CaseClosedPayloadV1(
                    case_id=case.case_id,
                    resolution=req.resolution or req.note or "closed",
                    store_id=case.store_id,
                    customer_key=case.customer_key,
                    actor=req.actor,
                    root_cause=case.root_cause,
                    outcome=case.outcome,
                ),
            }
        )
    else:
        event = CaseUpdatedV1.model_validate(
            {
                **common,
                "event_id": uuid.uuid4(),
                "payload": CaseUpdatedPayloadV1(
                    case_id=case.case_id,
                    status=status,
                    note=req.note,
                    change=change,
                    store_id=case.store_id,
                    customer_key=case.customer_key,
                    actor=req.actor,
                    assignee=req.assignee,
                    priority=case.priority,
                    root_cause=req.root_cause,
                    outcome=req.outcome,
                ),
            }
        )
    entry = {"note": "note_added", "close": "closed"}.get(req.action, str(change))
    return Applied(values, entry, detail, [event])
