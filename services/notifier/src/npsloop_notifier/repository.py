"""SQL implementation of the DeliveryStore port: one statement, one round trip, per call.

Both statements run in autocommit: a statement is its own transaction, so the delivery log keeps
every finished delivery even when a later one in the batch fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import text

from npsloop_platform.db import Database
from npsloop_schemas import NotificationRequestedV1

from .ports import Begun, Outcome

_BEGIN = text(
    """
    WITH input AS (
        SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:kinds AS text[]), CAST(:tenants AS text[]),
                             CAST(:keys AS text[])) AS t(delivery_id, kind, tenant_id, customer_key)
    ), inserted AS (
        INSERT INTO notifier.deliveries (delivery_id, kind, tenant_id, customer_key, status, attempts)
        SELECT delivery_id, kind, tenant_id, customer_key, 'pending', 0 FROM input
        ON CONFLICT (delivery_id) DO NOTHING
        RETURNING delivery_id
    )
    SELECT d.delivery_id, d.status, d.attempts, d.last_error
    FROM notifier.deliveries AS d WHERE d.delivery_id = ANY(CAST(:ids AS uuid[]))
    """
)

_FINISH = text(
    """
    WITH finished AS (
        UPDATE notifier.deliveries
        SET status = :status, attempts = :attempts, last_error = :error, updated_at = now()
        WHERE delivery_id = :id
        RETURNING delivery_id
    )
    INSERT INTO notifier.delivery_attempts (delivery_id, attempt, at, outcome, error)
    SELECT f.delivery_id, a.n, a.at, CASE WHEN a.error IS NULL THEN 'ok' ELSE 'error' END, a.error
    FROM finished AS f,
         unnest(CAST(:ns AS int[]), CAST(:ats AS timestamptz[]), CAST(:errors AS text[])) AS a(n, at, error)
    """
)


class SqlDeliveryStore:
    def __init__(self, db: Database) -> None:
        self.engine = db.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def begin(self, requests: Sequence[NotificationRequestedV1]) -> dict[uuid.UUID, Begun]:
        if not requests:
            return {}
        params = {
            "ids": [r.payload.delivery_id for r in requests],
            "kinds": [str(r.payload.kind) for r in requests],
            "tenants": [r.tenant_id for r in requests],
            "keys": [r.payload.customer_key for r in requests],
        }
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_BEGIN, params)).all()
        # The statement's snapshot predates its own insert: rows it sees existed before this batch.
        return {r.delivery_id: Begun(r.status, r.attempts, r.last_error, existed=True) for r in rows}

    async def finish(self, delivery_id: uuid.UUID, outcome: Outcome) -> None:
        params = {
            "id": delivery_id,
            "status": outcome.status,
            "attempts": len(outcome.attempts),
            "error": outcome.error,
            "ns": [a.number for a in outcome.attempts],
            "ats": [a.at for a in outcome.attempts],
            "errors": [a.error for a in outcome.attempts],
        }
        async with self.engine.connect() as conn:
            await conn.execute(_FINISH, params)
