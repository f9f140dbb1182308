"""SQL implementation of the DeliveryStore port: one statement, one round trip, per call.

Both statements run in autocommit: a statement is its own transaction, so the delivery log keeps
every finished delivery even when a later one in the batch fails. Every sub-statement of a
statement sees the snapshot from before it, so `begin` tells rows that existed from its own inserts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import text

from npsloop_platform.db import Database
from npsloop_schemas import DeliveryStatus, NotificationRequestedV1

from .ports import Begun, Gate, Outcome

_BEGIN = text(
    """
    WITH input AS (
        SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:kinds AS text[]), CAST(:tenants AS text[]),
                             CAST(:keys AS text[]), CAST(:not_before AS timestamptz[]), CAST(:ords AS int[]))
                      AS t(delivery_id, kind, tenant_id, customer_key, not_before, ord)
    ), hashes AS (
        SELECT * FROM unnest(CAST(:hash_ids AS uuid[]), CAST(:hashes AS text[])) AS h(delivery_id, value_hash)
    ), blocked AS (
        SELECT DISTINCT ON (h.delivery_id) h.delivery_id, s.kind || ' ' || s.hint || ': ' || s.reason AS reason
        FROM hashes AS h JOIN notifier.suppressions AS s ON s.value_hash = h.value_hash
        ORDER BY h.delivery_id, s.created_at
    ), inserted AS (
        INSERT INTO notifier.deliveries (delivery_id, kind, tenant_id, customer_key, status, attempts, created_at,
                                         updated_at)
        SELECT delivery_id, kind, tenant_id, customer_key, 'pending', 0, :now, :now FROM input
        ON CONFLICT (delivery_id) DO NOTHING
        RETURNING delivery_id
    ), candidates AS (
        SELECT DISTINCT ON (i.tenant_id, i.customer_key) i.*
        FROM input AS i JOIN inserted USING (delivery_id)
        WHERE i.not_before IS NOT NULL AND NOT EXISTS (SELECT 1 FROM blocked AS b WHERE b.delivery_id = i.delivery_id)
        ORDER BY i.tenant_id, i.customer_key, i.ord
    ), claimed AS (
        INSERT INTO notifier.contact_state AS cs (tenant_id, customer_key, last_contact_at, last_delivery_id,
                                                  last_kind)
        SELECT tenant_id, customer_key, :now, delivery_id, kind FROM candidates
        ON CONFLICT (tenant_id, customer_key) DO UPDATE
        SET previous_contact_at = cs.last_contact_at, last_contact_at = EXCLUDED.last_contact_at,
            last_delivery_id = EXCLUDED.last_delivery_id, last_kind = EXCLUDED.last_kind
        WHERE cs.last_contact_at <= (
            SELECT c.not_before FROM candidates AS c
            WHERE c.tenant_id = cs.tenant_id AND c.customer_key = cs.customer_key
        )
        RETURNING cs.last_delivery_id
    )
    SELECT i.delivery_id, d.status, d.attempts, d.last_error, d.delivery_id IS NOT NULL AS existed,
           b.reason AS blocked, c.last_delivery_id IS NOT NULL AS claimed, s.last_delivery_id AS holder,
           s.last_contact_at
    FROM input AS i
    LEFT JOIN notifier.deliveries AS d ON d.delivery_id = i.delivery_id
    LEFT JOIN blocked AS b ON b.delivery_id = i.delivery_id
    LEFT JOIN claimed AS c ON c.last_delivery_id = i.delivery_id
    LEFT JOIN notifier.contact_state AS s ON s.tenant_id = i.tenant_id AND s.customer_key = i.customer_key
    """
)

_FINISH = text(
    """
    WITH finished AS (
        UPDATE notifier.deliveries
        SET status = :status, attempts = :attempts, last_error = :error, updated_at = :now
        WHERE delivery_id = :id
        RETURNING delivery_id
    ), logged AS (
        INSERT INTO notifier.delivery_attempts (delivery_id, attempt, at, outcome, error, status_code)
        SELECT f.delivery_id, a.n, a.at, CASE WHEN a.error IS NULL THEN 'ok' ELSE 'error' END, a.error, a.code
        FROM finished AS f,
             unnest(CAST(:ns AS int[]), CAST(:ats AS timestamptz[]), CAST(:errors AS text[]), CAST(:codes AS int[]))
             AS a(n, at, error, code)
        RETURNING 1
    ), counted AS (
        INSERT INTO notifier.contact_state AS cs (tenant_id, customer_key, last_contact_at, last_delivery_id,
                                                  last_kind)
        SELECT :tenant, :key, :now, :id, :kind WHERE CAST(:count AS boolean)
        ON CONFLICT (tenant_id, customer_key) DO UPDATE
        SET previous_contact_at = cs.last_contact_at,
            last_contact_at = greatest(cs.last_contact_at, EXCLUDED.last_contact_at),
            last_delivery_id = EXCLUDED.last_delivery_id, last_kind = EXCLUDED.last_kind
        RETURNING 1
    ), released AS (
        UPDATE notifier.contact_state
        SET last_contact_at = coalesce(previous_contact_at, TIMESTAMPTZ '1970-01-01 00:00Z'), last_delivery_id = NULL
        WHERE CAST(:release AS boolean) AND tenant_id = :tenant AND customer_key = :key AND last_delivery_id = :id
        RETURNING 1
    )
    SELECT count(*) FROM finished
    """
)


class SqlDeliveryStore:
    def __init__(self, db: Database) -> None:
        self.engine = db.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def begin(
        self, requests: Sequence[NotificationRequestedV1], gates: Sequence[Gate], now: datetime
    ) -> dict[uuid.UUID, Begun]:
        if not requests:
            return {}
        hash_ids: list[uuid.UUID] = []
        hashes: list[str] = []
        for r, g in zip(requests, gates, strict=True):
            hash_ids += [r.payload.delivery_id] * len(g.hashes)
            hashes += g.hashes
        params = {
            "ids": [r.payload.delivery_id for r in requests],
            "kinds": [str(r.payload.kind) for r in requests],
            "tenants": [r.tenant_id for r in requests],
            "keys": [r.payload.customer_key for r in requests],
            "not_before": [g.not_before for g in gates],
            "ords": list(range(len(requests))),
            "hash_ids": hash_ids,
            "hashes": hashes,
            "now": now,
        }
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_BEGIN, params)).all()
        return {
            r.delivery_id: Begun(
                r.status or "pending",
                r.attempts or 0,
                r.last_error,
                existed=r.existed,
                blocked=r.blocked,
                claimed=r.claimed,
                holder=r.holder,
                last_contact_at=r.last_contact_at,
            )
            for r in rows
        }

    async def finish(
        self, request: NotificationRequestedV1, outcome: Outcome, now: datetime, *, capped: bool = False
    ) -> None:
        p = request.payload
        sent = outcome.status == str(DeliveryStatus.SENT)
        params = {
            "id": p.delivery_id,
            "status": outcome.status,
            "attempts": len(outcome.attempts),
            "error": outcome.error,
            "ns": [a.number for a in outcome.attempts],
            "ats": [a.at for a in outcome.attempts],
            "errors": [a.error for a in outcome.attempts],
            "codes": [a.status_code for a in outcome.attempts],
            "now": now,
            "tenant": request.tenant_id,
            "key": p.customer_key,
            "kind": str(p.kind),
            "count": sent and not capped,  # an exempt kind still counts as a contact
            "release": capped and not sent,  # a failed message gives its slot back
        }
        async with self.engine.connect() as conn:
            await conn.execute(_FINISH, params)
