"""SQL implementation of the DeliveryStore port: one statement, one round trip, per call.

Both statements run in autocommit: a statement is its own transaction, so the delivery log keeps
every finished delivery even when a later one in the batch fails. Finishes are group-committed:
those that queue while one is written go together in the next statement (one commit, one fsync).
Every sub-statement of a statement sees the snapshot from before it, so `begin` tells rows that
existed from its own inserts. They run on the pooled connection's asyncpg connection itself
(`driver_connection`): SQLAlchemy's execution path cost more CPU than the statements.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from sqlalchemy import text

from npsloop_platform.db import Database, Statement, driver_connection
from npsloop_schemas import DeliveryStatus, NotificationRequestedV1, parse_event, serialize_event

from .ports import Begun, Gate, Outcome

T = TypeVar("T")

_BEGIN = Statement(
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

_FINISH = Statement(
    """
    WITH input AS (
        SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:statuses AS text[]), CAST(:attempts AS int[]),
                             CAST(:errors AS text[]), CAST(:nows AS timestamptz[]), CAST(:tenants AS text[]),
                             CAST(:keys AS text[]), CAST(:kinds AS text[]), CAST(:counts AS boolean[]),
                             CAST(:releases AS boolean[]), CAST(:nexts AS timestamptz[]), CAST(:bodies AS text[]))
                      AS t(delivery_id, status, attempts, error, now, tenant_id, customer_key, kind, count, release,
                           next_attempt_at, body)
    ), finished AS (
        UPDATE notifier.deliveries AS d
        SET status = i.status, attempts = i.attempts, last_error = i.error, updated_at = i.now,
            next_attempt_at = i.next_attempt_at, body = i.body
        FROM input AS i WHERE d.delivery_id = i.delivery_id
        RETURNING d.delivery_id
    ), logged AS (
        INSERT INTO notifier.delivery_attempts (delivery_id, attempt, at, outcome, error, status_code)
        SELECT a.delivery_id, a.n, a.at, CASE WHEN a.error IS NULL THEN 'ok' ELSE 'error' END, a.error, a.code
        FROM unnest(CAST(:a_ids AS uuid[]), CAST(:a_ns AS int[]), CAST(:a_ats AS timestamptz[]),
                    CAST(:a_errors AS text[]), CAST(:a_codes AS int[])) AS a(delivery_id, n, at, error, code)
        WHERE a.delivery_id IN (SELECT delivery_id FROM finished)
        RETURNING 1
    ), counted AS (
        INSERT INTO notifier.contact_state AS cs (tenant_id, customer_key, last_contact_at, last_delivery_id,
                                                  last_kind)
        SELECT DISTINCT ON (tenant_id, customer_key) tenant_id, customer_key, now, delivery_id, kind
        FROM input WHERE count ORDER BY tenant_id, customer_key, now DESC
        ON CONFLICT (tenant_id, customer_key) DO UPDATE
        SET previous_contact_at = cs.last_contact_at,
            last_contact_at = greatest(cs.last_contact_at, EXCLUDED.last_contact_at),
            last_delivery_id = EXCLUDED.last_delivery_id, last_kind = EXCLUDED.last_kind
        RETURNING 1
    ), released AS (
        UPDATE notifier.contact_state AS cs
        SET last_contact_at = coalesce(cs.previous_contact_at, TIMESTAMPTZ '1970-01-01 00:00Z'),
            last_delivery_id = NULL
        FROM input AS i
        WHERE i.release AND cs.tenant_id = i.tenant_id AND cs.customer_key = i.customer_key
          AND cs.last_delivery_id = i.delivery_id
        RETURNING 1
    )
    SELECT count(*) FROM finished
    """
)


_CLAIM_DUE = text(
    """
    UPDATE notifier.deliveries AS d SET next_attempt_at = CAST(:lease AS timestamptz)
    WHERE d.delivery_id IN (
        SELECT delivery_id FROM notifier.deliveries
        WHERE status = 'retrying' AND kind <> 'webhook' AND next_attempt_at <= CAST(:now AS timestamptz)
        ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED
    )
    RETURNING d.delivery_id, d.body, d.attempts, d.created_at
    """
)
RETRYING = "retrying"


@dataclass(frozen=True)
class _Finish:
    request: NotificationRequestedV1
    outcome: Outcome
    now: datetime
    capped: bool
    total: int | None = None  # attempts in all (None: this outcome's)


class GroupCommit(Generic[T]):
    """Runs `flush(items)` for everything queued while the previous flush ran: many finishes in one
    statement and one commit, with no added wait (the first one goes at once). A failed flush fails
    every caller in it, and the edge retries the batch as it would any database error."""

    def __init__(self, flush: Callable[[list[T]], Awaitable[None]], max_items: int = 256) -> None:
        self.flush, self.max_items = flush, max_items
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0

    async def submit(self, item: T) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        await future

    async def _drain(self) -> None:
        try:
            await asyncio.sleep(0)  # gather what the same loop iteration submits
            while self._pending:
                batch, self._pending = self._pending[: self.max_items], self._pending[self.max_items :]
                self.flushes += 1
                try:
                    await self.flush([item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._task = None


class SqlDeliveryStore:
    def __init__(self, db: Database) -> None:
        self.engine = db.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._finishes = GroupCommit(self._flush)

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
        async with driver_connection(self.engine) as conn:
            rows = await _BEGIN.fetch(conn, params)
        return {
            r["delivery_id"]: Begun(
                r["status"] or "pending",
                r["attempts"] or 0,
                r["last_error"],
                existed=r["existed"],
                blocked=r["blocked"],
                claimed=r["claimed"],
                holder=r["holder"],
                last_contact_at=r["last_contact_at"],
            )
            for r in rows
        }

    async def finish(
        self,
        request: NotificationRequestedV1,
        outcome: Outcome,
        now: datetime,
        *,
        capped: bool = False,
        total: int | None = None,
    ) -> None:
        """The delivery's own round trip, shared with the finishes that queue meanwhile."""
        await self._finishes.submit(_Finish(request, outcome, now, capped, total))

    async def claim_due(
        self, now: datetime, *, lease_s: float, limit: int
    ) -> list[tuple[NotificationRequestedV1, int, datetime]]:
        """Emails and call tasks due for a retry: (request, attempts so far, began). Claimed by
        pushing next_attempt_at past the lease under SKIP LOCKED: one replica retries each, and a
        replica killed mid-round leaves them due again when the lease ends."""
        params = {"now": now, "lease": now + timedelta(seconds=lease_s), "limit": limit}
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_CLAIM_DUE, params)).all()
        out = []
        for r in sorted(rows, key=lambda r: r.created_at):
            request = parse_event(r.body)
            assert isinstance(request, NotificationRequestedV1)
            out.append((request, int(r.attempts), r.created_at))
        return out

    async def _flush(self, items: list[_Finish]) -> None:
        sent = [f.outcome.status == str(DeliveryStatus.SENT) for f in items]
        # a delivery retried later keeps its frequency-cap claim: it is still on its way
        held = [f.outcome.status in (str(DeliveryStatus.SENT), RETRYING) for f in items]
        attempts = [(f.request.payload.delivery_id, a) for f in items for a in f.outcome.attempts]
        params = {
            "ids": [f.request.payload.delivery_id for f in items],
            "statuses": [f.outcome.status for f in items],
            "attempts": [len(f.outcome.attempts) if f.total is None else f.total for f in items],
            "errors": [f.outcome.error for f in items],
            "nows": [f.now for f in items],
            "tenants": [f.request.tenant_id for f in items],
            "keys": [f.request.payload.customer_key for f in items],
            "kinds": [str(f.request.payload.kind) for f in items],
            "counts": [ok and not f.capped for f, ok in zip(items, sent, strict=True)],  # an exempt kind counts
            "releases": [f.capped and not ok for f, ok in zip(items, held, strict=True)],  # a failure gives it back
            "nexts": [f.outcome.retry_at for f in items],
            # the request, kept only while it waits for a retry (it holds the contact details)
            "bodies": [serialize_event(f.request).decode() if f.outcome.status == RETRYING else None for f in items],
            "a_ids": [d for d, _ in attempts],
            "a_ns": [a.number for _, a in attempts],
            "a_ats": [a.at for _, a in attempts],
            "a_errors": [a.error for _, a in attempts],
            "a_codes": [a.status_code for _, a in attempts],
        }
        async with driver_connection(self.engine) as conn:
            await _FINISH.fetch(conn, params)
