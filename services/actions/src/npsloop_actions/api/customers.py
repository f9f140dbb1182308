"""Customers: the journey the POS reads when a customer is identified, and the visit it acknowledges.

A source key (the till), a manager or an admin may call these; a store-scoped key sees only the
history at its stores and records visits at its stores only.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path
from pydantic import BaseModel, ConfigDict, StringConstraints

from npsloop_platform.access import Principal, Role
from npsloop_platform.access.http import require
from npsloop_platform.app import DbDep
from npsloop_platform.text import ID_PATTERN

from ..queries import Conflict, get_customer, record_visit
from .deps import CtxDep, scope_of

router = APIRouter(prefix="/v1", tags=["customers"])
TillDep = Annotated[Principal, Depends(require(Role.SOURCE, Role.MANAGER, Role.ADMIN))]
CUSTOMER_ID = Path(min_length=1, max_length=128, pattern=ID_PATTERN, description="The retailer's customer id.")
VisitId = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=ID_PATTERN)]


class VisitBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"visit_id": "till-3/receipt-8812", "store_id": "berlin-1"}]}
    )
    visit_id: VisitId | None = None
    store_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None


@router.get("/customers/{customer_id}", summary="A customer's history, band, markers and what the till should do next.")
async def customer(db: DbDep, principal: TillDep, ctx: CtxDep, customer_id: str = CUSTOMER_ID) -> dict[str, Any]:
    scope = scope_of(principal, None)
    async with db.session() as session:
        found = await get_customer(session, scope, customer_id, ctx.clock())
    if found is None:
        raise HTTPException(404, "Not found.")
    return found


@router.post(
    "/customers/{customer_id}/visits",
    responses={409: {"description": "This visit_id was used before for another customer."}},
    summary="The till served this customer: clears the surprise-and-delight flag, exactly once.",
)
async def visit(
    db: DbDep,
    principal: TillDep,
    body: VisitBody | None = None,
    customer_id: str = CUSTOMER_ID,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> dict[str, Any]:
    body = body or VisitBody()
    if body.store_id is not None and not principal.may_see_store(body.store_id):
        raise HTTPException(403, f"This key may act for stores {sorted(principal.stores or [])} only.")
    scope = scope_of(principal, None)
    visit_id = body.visit_id or idempotency_key or str(uuid.uuid4())
    try:
        async with db.session() as session, session.begin():
            result = await record_visit(session, scope, customer_id, visit_id, body.store_id)
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    if result is None:
        raise HTTPException(404, "Not found.")
    return result
