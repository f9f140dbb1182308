"""SQL for the delivery log and the suppression list, scoped by tenant in every query."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text

from npsloop_platform.db import Database

from .policy import hint, suppression_hash


def _delivery(r: Any) -> dict[str, Any]:
    return {
        "delivery_id": str(r.delivery_id),
        "kind": r.kind,
        "status": r.status,
        "attempts": r.attempts,
        "last_error": r.last_error,
        "subscription_id": str(r.subscription_id) if r.subscription_id else None,
        "event_id": str(r.event_id) if r.event_id else None,
        "event_type": r.event_type,
        "created_at": r.created_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
    }


class DeliveryLog:
    def __init__(self, db: Database) -> None:
        self.engine = db.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def deliveries(
        self,
        tenant_id: str,
        *,
        kind: str | None = None,
        status: str | None = None,
        subscription_id: uuid.UUID | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        query = text(
            """
            SELECT delivery_id, kind, status, attempts, last_error, subscription_id, event_id, event_type,
                   created_at, updated_at
            FROM notifier.deliveries
            WHERE tenant_id = :tenant
              AND (CAST(:kind AS text) IS NULL OR kind = CAST(:kind AS text))
              AND (CAST(:status AS text) IS NULL OR status = CAST(:status AS text))
              AND (CAST(:sub AS uuid) IS NULL OR subscription_id = CAST(:sub AS uuid))
              AND (CAST(:since AS timestamptz) IS NULL OR created_at >= CAST(:since AS timestamptz))
            ORDER BY created_at DESC LIMIT :limit
            """
        )
        params = {"tenant": tenant_id, "kind": kind, "status": status, "sub": subscription_id, "since": since}
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query, params | {"limit": limit})).all()
        return [_delivery(r) for r in rows]

    async def get(self, tenant_id: str, delivery_id: uuid.UUID) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        """
                        SELECT delivery_id, kind, status, attempts, last_error, subscription_id, event_id,
                               event_type, created_at, updated_at
                        FROM notifier.deliveries WHERE tenant_id = :tenant AND delivery_id = :id
                        """
                    ),
                    {"tenant": tenant_id, "id": delivery_id},
                )
            ).first()
            if row is None:
                return None
            attempts = (
                await conn.execute(
                    text(
                        "SELECT attempt, at, outcome, error, status_code FROM notifier.delivery_attempts "
                        "WHERE delivery_id = :id ORDER BY id"
                    ),
                    {"id": delivery_id},
                )
            ).all()
        return _delivery(row) | {
            "log": [
                {
                    "attempt": a.attempt,
                    "at": a.at.isoformat(),
                    "outcome": a.outcome,
                    "error": a.error,
                    "status_code": a.status_code,
                }
                for a in attempts
            ]
        }


class SuppressionList:
    def __init__(self, db: Database) -> None:
        self.engine = db.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def add_hash(self, tenant_id: str, kind: str, value_hash: str, hint_: str, reason: str, source: str) -> bool:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        """
                        INSERT INTO notifier.suppressions (value_hash, tenant_id, kind, hint, reason, source)
                        VALUES (:h, :tenant, :kind, :hint, :reason, :source)
                        ON CONFLICT (value_hash) DO NOTHING RETURNING value_hash
                        """
                    ),
                    {
                        "h": value_hash,
                        "tenant": tenant_id,
                        "kind": kind,
                        "hint": hint_,
                        "reason": reason,
                        "source": source,
                    },
                )
            ).first()
        return row is not None

    async def add(self, tenant_id: str, kind: str, value: str, reason: str, source: str) -> dict[str, Any]:
        value_hash = suppression_hash(tenant_id, kind, value)
        await self.add_hash(tenant_id, kind, value_hash, hint(kind, value), reason, source)
        return {"id": value_hash, "kind": kind, "hint": hint(kind, value), "reason": reason}

    async def entries(self, tenant_id: str, limit: int = 500) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT value_hash, kind, hint, reason, source, created_at FROM notifier.suppressions "
                        "WHERE tenant_id = :tenant ORDER BY created_at DESC LIMIT :limit"
                    ),
                    {"tenant": tenant_id, "limit": limit},
                )
            ).all()
        return [
            {
                "id": r.value_hash,
                "kind": r.kind,
                "hint": r.hint,
                "reason": r.reason,
                "source": r.source,
                "created_at": r.created_at.isoformat(),
            }
            for r in rows
        ]

    async def remove(self, tenant_id: str, value_hash: str) -> bool:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "DELETE FROM notifier.suppressions WHERE tenant_id = :tenant AND value_hash = :h "
                        "RETURNING value_hash"
                    ),
                    {"tenant": tenant_id, "h": value_hash},
                )
            ).first()
        return row is not None
