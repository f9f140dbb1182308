"""Cases: the worklist, one case with its timeline, and the changes people make to it.

Scope is applied in the SQL query. Another tenant or a store outside the key's scope finds
nothing: 404, never 403, so that existence does not leak. An invalid transition is 409; an
unknown root-cause or outcome code is 422. Every change is a `case.*` event, through the outbox.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from npsloop_platform.access import Principal
from npsloop_platform.access.http import ReaderDep
from npsloop_platform.app import DbDep
from npsloop_platform.text import ID_PATTERN
from npsloop_schemas import nps_summary

from ..cases import Action, InvalidTransition, Request, UnknownCode
from ..queries import CaseFilter, Conflict, band_counts, change_case, get_case, list_cases
from .deps import STORE, TENANT, CtxDep, RelayDep, scope_of

router = APIRouter(prefix="/v1", tags=["cases"])
Text = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")]
Code = Annotated[str, StringConstraints(min_length=1, max_length=64)]
CASE_ID = Path(description="The case id (a UUID).")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AssignBody(_Body):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"assignee": "anna.berlin", "note": "Calls back before noon"}]}
    )

    assignee: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=ID_PATTERN)]
    note: Text | None = None


class NoteBody(_Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"note": "Customer prefers email"}]})

    note: Text


class ContactBody(_Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"channel": "phone", "note": "Reached; a voucher is on its way"}]},
    )

    channel: Literal["phone", "email", "sms", "in_store", "other"] = "phone"
    note: Text | None = None


class ResolveBody(_Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"root_cause": "waiting_time", "outcome": "recovered", "note": "Extra till at peak hours"}]
        },
    )

    root_cause: Code = Field(description="One of the policy's root_causes.")
    outcome: Code = Field(description="One of the policy's outcomes.")
    note: Text | None = None


class CloseBody(_Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"resolution": "Voucher sent", "note": "No further contact wanted"}]},
    )

    resolution: Text | None = None
    note: Text | None = None


class ReopenBody(_Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"note": "Customer called again"}]})

    note: Text | None = None


@router.get("/cases", summary="Cases of your tenant (and stores), filtered, sorted and paged.")
async def get_cases(
    db: DbDep,
    principal: ReaderDep,
    ctx: CtxDep,
    tenant_id: str | None = TENANT,
    store_id: str | None = STORE,
    status: Literal["open", "contacted", "resolved", "closed"] | None = None,
    segment: Literal["detractor", "passive", "promoter"] | None = None,
    kind: Literal["callback", "nurture"] | None = None,
    min_priority: int | None = Query(None, ge=0, le=100),
    assignee: str | None = Query(None, min_length=1, max_length=128),
    overdue: bool | None = Query(None, description="true: open, not contacted, past its SLA."),
    sort: Literal["newest", "priority", "due"] = Query(
        "newest", description="newest first, most urgent, or due first."
    ),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> dict[str, Any]:
    scope = scope_of(principal, tenant_id, store_id)
    f = CaseFilter(store_id, status, segment, kind, min_priority, assignee, overdue, sort)
    async with db.session() as session:
        cases, total = await list_cases(session, scope, f, ctx.clock(), limit, offset)
    more = offset + len(cases) < total
    return {
        "cases": cases,
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if more else None,
    }


@router.get("/cases/{case_id}", summary="One case, with its feedback and its timeline.")
async def get_one_case(
    db: DbDep, principal: ReaderDep, ctx: CtxDep, case_id: uuid.UUID = CASE_ID, tenant_id: str | None = TENANT
) -> dict[str, Any]:
    scope = scope_of(principal, tenant_id)
    async with db.session() as session:
        case = await get_case(session, scope, case_id, ctx.clock())
    if case is None:
        raise HTTPException(404, "Not found.")
    return case


async def _change(
    db: Any, principal: Principal, ctx: Any, relay: Any, case_id: uuid.UUID, action: Action, **fields: Any
) -> dict[str, Any]:
    scope = scope_of(principal, None)
    req = Request(action=action, actor=principal.actor, **fields)
    now = ctx.clock()
    try:
        async with db.session() as session, session.begin():
            applied = await change_case(session, scope, case_id, req, ctx.policy, now, ctx.source)
            if applied is None:
                raise HTTPException(404, "Not found.")
    except InvalidTransition as exc:
        raise HTTPException(409, str(exc)) from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except UnknownCode as exc:
        raise HTTPException(422, str(exc)) from None
    if relay is not None:
        relay.wake()
    async with db.session() as session:
        case = await get_case(session, scope, case_id, now)
    return {"case": case, "event_type": applied.events[0].event_type}


@router.post("/cases/{case_id}/assign", summary="Give the case to someone (not once it is closed).")
async def assign(
    db: DbDep, principal: ReaderDep, ctx: CtxDep, relay: RelayDep, body: AssignBody, case_id: uuid.UUID = CASE_ID
) -> dict[str, Any]:
    return await _change(db, principal, ctx, relay, case_id, "assign", assignee=body.assignee, note=body.note)


@router.post("/cases/{case_id}/notes", summary="Add a note to the case's timeline.")
async def add_note(
    db: DbDep, principal: ReaderDep, ctx: CtxDep, relay: RelayDep, body: NoteBody, case_id: uuid.UUID = CASE_ID
) -> dict[str, Any]:
    return await _change(db, principal, ctx, relay, case_id, "note", note=body.note)


@router.post("/cases/{case_id}/contacts", summary="Record that the customer was reached (open or contacted cases).")
async def record_contact(
    db: DbDep, principal: ReaderDep, ctx: CtxDep, relay: RelayDep, body: ContactBody, case_id: uuid.UUID = CASE_ID
) -> dict[str, Any]:
    return await _change(db, principal, ctx, relay, case_id, "contact", channel=body.channel, note=body.note)


@router.post("/cases/{case_id}/resolve", summary="Resolve with a root-cause code and an outcome (from the policy).")
async def resolve(
    db: DbDep, principal: ReaderDep, ctx: CtxDep, relay: RelayDep, body: ResolveBody, case_id: uuid.UUID = CASE_ID
) -> dict[str, Any]:
    return await _change(
        db, principal, ctx, relay, case_id, "resolve", root_cause=body.root_cause, outcome=body.outcome, note=body.note
    )


@router.post("/cases/{case_id}/close", summary="Close the case (a case.closed event).")
async def close(
    db: DbDep, principal: ReaderDep, ctx: CtxDep, relay: RelayDep, body: CloseBody, case_id: uuid.UUID = CASE_ID
) -> dict[str, Any]:
    return await _change(db, principal, ctx, relay, case_id, "close", resolution=body.resolution, note=body.note)


@router.post("/cases/{case_id}/reopen", summary="Reopen a resolved or closed case (409 if the customer has another).")
async def reopen(
    db: DbDep, principal: ReaderDep, ctx: CtxDep, relay: RelayDep, body: ReopenBody, case_id: uuid.UUID = CASE_ID
) -> dict[str, Any]:
    return await _change(db, principal, ctx, relay, case_id, "reopen", note=body.note)


@router.get("/nps", summary="NPS with its 95% margin of error; small samples are flagged.")
async def get_nps(
    db: DbDep, principal: ReaderDep, tenant_id: str | None = TENANT, store_id: str | None = STORE
) -> dict[str, Any]:
    scope = scope_of(principal, tenant_id, store_id)
    async with db.session() as session:
        counts = await band_counts(session, scope.tenant_id, store_id, principal.stores)
    summary = nps_summary(counts.get("promoter", 0), counts.get("passive", 0), counts.get("detractor", 0))
    return {"tenant_id": scope.tenant_id, "store_id": store_id, **asdict(summary)}
