"""What the actions routes share: the context (policy, clock), the outbox relay, the query scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from npsloop_platform.access import Principal
from npsloop_platform.app import state_of
from npsloop_platform.outbox import OutboxRelay
from npsloop_platform.text import ID_PATTERN

from ..handlers import Context
from ..queries import Scope

TENANT = Query(
    None,
    min_length=1,
    max_length=64,
    pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
    description="Optional: your key's tenant.",
)
STORE = Query(None, min_length=1, max_length=128, pattern=ID_PATTERN, description="One store only.")


async def _context(request: Request) -> Context:
    ctx: Context = state_of(request).extras["actions"]
    return ctx


async def _relay(request: Request) -> OutboxRelay | None:
    relay: OutboxRelay | None = state_of(request).extras.get("actions_relay")
    return relay


CtxDep = Annotated[Context, Depends(_context)]
RelayDep = Annotated[OutboxRelay | None, Depends(_relay)]


def scope_of(principal: Principal, tenant_id: str | None, store_id: str | None = None) -> Scope:
    """The key's tenant and stores; naming another tenant, or a store outside the key's, finds nothing."""
    if tenant_id is not None and tenant_id != principal.tenant_id:
        raise HTTPException(404, "Not found.")
    if store_id is not None and not principal.may_see_store(store_id):
        raise HTTPException(404, "Not found.")
    return Scope(principal.tenant_id, principal.stores)
