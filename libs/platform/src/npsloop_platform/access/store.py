"""Where keys live: the `access.api_keys` table, read by every replica of every service through a
short-lived cache (`cache_ttl_s`, 5 s by default). A revocation therefore reaches every replica
within that time plus one query, with no broker in the path of an authentication decision.
Every change is written to `access.audit_log` in the same transaction."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update

from ..db import Database
from .keys import Principal, Role, generate_key, key_hash, same_hash, split_key
from .models import ApiKeyRow, AuditRow


@dataclass(frozen=True)
class _Cached:
    at: float
    row: tuple[str, str, str, list[str] | None, bool] | None  # hash, tenant, role, stores, revoked


class KeyStore:
    """A component: creates, lists and revokes keys, and authenticates them (cached)."""

    name = "access-keys"

    def __init__(self, db: Database, *, cache_ttl_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.db, self.cache_ttl_s, self.clock = db, cache_ttl_s, clock
        self._cache: dict[str, _Cached] = {}
        self._loading: dict[str, asyncio.Future[Any]] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._cache.clear()

    async def ready(self) -> bool:
        return True

    # -- authentication ---------------------------------------------------------------------
    async def authenticate(self, key: str) -> Principal | None:
        """The principal of a valid, unrevoked key; None otherwise (never says which part failed)."""
        prefix = split_key(key)
        if prefix is None:
            return None
        row = await self._row(prefix)
        if row is None:
            same_hash(key_hash(key), "0" * 64)  # the same work for unknown prefixes
            return None
        stored_hash, tenant, role, stores, revoked = row
        if not same_hash(key_hash(key), stored_hash) or revoked:
            return None
        return Principal(prefix, tenant, Role(role), frozenset(stores) if stores is not None else None)

    async def principal_by_prefix(self, prefix: str) -> Principal | None:
        """For sessions: the key behind a signed cookie, if it is still valid."""
        row = await self._row(prefix)
        if row is None or row[4]:
            return None
        return Principal(prefix, row[1], Role(row[2]), frozenset(row[3]) if row[3] is not None else None)

    async def _row(self, prefix: str) -> tuple[str, str, str, list[str] | None, bool] | None:
        now = self.clock()
        cached = self._cache.get(prefix)
        if cached is not None and now - cached.at < self.cache_ttl_s:
            return cached.row
        # Single flight: when the entry expires under load, the requests in flight for that key all
        # missed at once and each ran the same query; now they share the first one's.
        pending = self._loading.get(prefix)
        if pending is None:
            pending = asyncio.get_running_loop().create_task(self._load(prefix, now))
            self._loading[prefix] = pending
            pending.add_done_callback(lambda done: self._forget_load(prefix, done))
        return await asyncio.shield(pending)

    def _forget_load(self, prefix: str, done: asyncio.Future[Any]) -> None:
        if self._loading.get(prefix) is done:
            del self._loading[prefix]
        if not done.cancelled():
            done.exception()  # retrieved: a failure reached its waiters, not the loop's log

    async def _load(self, prefix: str, now: float) -> tuple[str, str, str, list[str] | None, bool] | None:
        async with self.db.session() as session:
            found = (
                await session.execute(
                    select(
                        ApiKeyRow.key_hash, ApiKeyRow.tenant_id, ApiKeyRow.role, ApiKeyRow.stores, ApiKeyRow.revoked_at
                    ).where(ApiKeyRow.prefix == prefix)
                )
            ).first()
        row = None if found is None else (found[0], found[1], found[2], found[3], found[4] is not None)
        if self._loading.get(prefix) is not asyncio.current_task():
            return row  # a revocation came meanwhile: do not cache what was read before it
        if len(self._cache) > 10_000:
            self._cache.clear()  # bounded: a flood of made-up prefixes cannot grow it forever
        self._cache[prefix] = _Cached(now, row)
        return row

    # -- management -------------------------------------------------------------------------
    async def create(
        self, tenant_id: str, role: Role, stores: Sequence[str] | None, actor: str, name: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """A new key: (the key, shown once; its description without the secret)."""
        key, prefix = generate_key()
        stores_list = sorted(set(stores)) if stores else None
        async with self.db.session() as session, session.begin():
            session.add(
                ApiKeyRow(
                    prefix=prefix,
                    key_hash=key_hash(key),
                    tenant_id=tenant_id,
                    role=str(role),
                    stores=stores_list,
                    name=name,
                    created_by=actor,
                )
            )
            session.add(
                AuditRow(
                    actor=actor,
                    tenant_id=tenant_id,
                    action="key.created",
                    target=prefix,
                    detail={"role": str(role), "stores": stores_list, "name": name},
                )
            )
        return key, {"prefix": prefix, "tenant_id": tenant_id, "role": str(role), "stores": stores_list, "name": name}

    async def list_keys(self, tenant_id: str | None = None) -> list[dict[str, Any]]:
        stmt = select(ApiKeyRow).order_by(ApiKeyRow.tenant_id, ApiKeyRow.created_at)
        if tenant_id is not None:
            stmt = stmt.where(ApiKeyRow.tenant_id == tenant_id)
        async with self.db.session() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [
            {
                "prefix": r.prefix,
                "tenant_id": r.tenant_id,
                "role": r.role,
                "stores": r.stores,
                "name": r.name,
                "created_by": r.created_by,
                "created_at": r.created_at.isoformat(),
                "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
            }
            for r in rows
        ]

    async def revoke(self, prefix: str, actor: str, tenant_id: str | None = None) -> bool:
        """Revoke a key (of `tenant_id`, when given); False when there is no such live key."""
        async with self.db.session() as session, session.begin():
            stmt = update(ApiKeyRow).where(ApiKeyRow.prefix == prefix, ApiKeyRow.revoked_at.is_(None))
            if tenant_id is not None:
                stmt = stmt.where(ApiKeyRow.tenant_id == tenant_id)
            tenant = (await session.execute(stmt.values(revoked_at=func.now()).returning(ApiKeyRow.tenant_id))).scalar()
            if tenant is None:
                return False
            session.add(AuditRow(actor=actor, tenant_id=tenant, action="key.revoked", target=prefix, detail={}))
        self._cache.pop(prefix, None)  # this replica at once; the others within cache_ttl_s
        self._loading.pop(prefix, None)
        return True

    async def audit(self, tenant_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        stmt = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if tenant_id is not None:
            stmt = stmt.where(AuditRow.tenant_id == tenant_id)
        async with self.db.session() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [
            {"at": r.at.isoformat(), "actor": r.actor, "action": r.action, "target": r.target, "detail": r.detail}
            for r in rows
        ]
