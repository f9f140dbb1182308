"""SQL for webhooks: the WebhookStore port (one round trip per call) and the admin queries.

A delivery's `begin` and grouped `finish` run on the asyncpg connection itself (as in
`repository.py`); the rest goes through SQLAlchemy.

Every admin query is scoped by tenant in SQL: another tenant's subscription or delivery is
simply not found (a 404 at the API).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from npsloop_platform.db import Database, Statement, driver_connection

from .ports import Begun, Outcome, Subscription, WebhookJob
from .repository import GroupCommit
from .webhooks import new_secret

_SUBSCRIPTIONS = text(
    """
    SELECT id, tenant_id, url, event_types, secret, previous_secret, previous_valid_until, status
    FROM notifier.webhook_subscriptions
    WHERE tenant_id = ANY(CAST(:tenants AS text[])) AND deleted_at IS NULL
    """
)

_BEGIN = Statement(
    """
    WITH input AS (
        SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:subs AS uuid[]), CAST(:events AS uuid[]),
                             CAST(:types AS text[]), CAST(:tenants AS text[]), CAST(:keys AS text[]),
                             CAST(:bodies AS text[]))
                      AS t(delivery_id, subscription_id, event_id, event_type, tenant_id, customer_key, body)
    ), inserted AS (
        INSERT INTO notifier.deliveries (delivery_id, kind, tenant_id, customer_key, status, attempts,
                                         subscription_id, event_id, event_type, body)
        SELECT delivery_id, 'webhook', tenant_id, customer_key, 'pending', 0, subscription_id, event_id,
               event_type, body
        FROM input
        ON CONFLICT (delivery_id) DO NOTHING
        RETURNING delivery_id
    )
    SELECT d.delivery_id, d.status, d.attempts, d.last_error
    FROM notifier.deliveries AS d WHERE d.delivery_id = ANY(CAST(:ids AS uuid[]))
    """
)

_FINISH = Statement(
    """
    WITH input AS (
        SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:statuses AS text[]), CAST(:totals AS int[]),
                             CAST(:errors AS text[]), CAST(:nexts AS timestamptz[]))
                      AS t(delivery_id, status, total, error, next_attempt_at)
    ), finished AS (
        UPDATE notifier.deliveries AS d
        SET status = i.status, attempts = i.total, last_error = i.error, updated_at = now(),
            next_attempt_at = i.next_attempt_at
        FROM input AS i WHERE d.delivery_id = i.delivery_id
        RETURNING d.delivery_id
    ), logged AS (
        INSERT INTO notifier.delivery_attempts (delivery_id, attempt, at, outcome, error, status_code)
        SELECT a.delivery_id, a.n, a.at, CASE WHEN a.error IS NULL THEN 'ok' ELSE 'error' END, a.error, a.code
        FROM unnest(CAST(:a_ids AS uuid[]), CAST(:a_ns AS int[]), CAST(:a_ats AS timestamptz[]),
                    CAST(:a_errors AS text[]), CAST(:a_codes AS int[])) AS a(delivery_id, n, at, error, code)
        WHERE a.delivery_id IN (SELECT delivery_id FROM finished)
        RETURNING 1
    ), per_subscription AS (
        SELECT * FROM unnest(CAST(:subs AS uuid[]), CAST(:any_ok AS boolean[]), CAST(:fails AS int[]),
                             CAST(:reasons AS text[])) AS t(id, any_ok, fails, reason)
    ), counted AS (
        -- a success touches the row only after failures: deliveries do not queue on one hot row
        UPDATE notifier.webhook_subscriptions AS s
        SET consecutive_failures = CASE WHEN p.any_ok THEN p.fails ELSE s.consecutive_failures + p.fails END,
            status = CASE WHEN (CASE WHEN p.any_ok THEN 0 ELSE s.consecutive_failures END) + p.fails >= :threshold
                          THEN 'disabled' ELSE s.status END,
            disabled_reason = CASE WHEN s.status = 'active'
                                        AND (CASE WHEN p.any_ok THEN 0 ELSE s.consecutive_failures END) + p.fails
                                            >= :threshold
                                   THEN p.reason ELSE s.disabled_reason END,
            disabled_at = CASE WHEN s.status = 'active'
                                    AND (CASE WHEN p.any_ok THEN 0 ELSE s.consecutive_failures END) + p.fails
                                        >= :threshold
                               THEN now() ELSE s.disabled_at END
        FROM per_subscription AS p
        WHERE s.id = p.id AND (p.fails > 0 OR s.consecutive_failures > 0)
        RETURNING s.id, s.status
    )
    SELECT id, status FROM counted
    """
)


@dataclass(frozen=True, eq=False)  # by identity: the key of its status
class _Finish:
    job: WebhookJob
    outcome: Outcome
    total_attempts: int
    count: bool


class SqlWebhookStore:
    """The WebhookStore port, with a short per-replica cache of subscriptions."""

    def __init__(
        self, db: Database, *, disable_after: int, cache_ttl_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.db, self.disable_after = db, disable_after
        self.engine = db.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.cache_ttl_s, self.clock = cache_ttl_s, clock
        self._cache: dict[str, tuple[float, list[Subscription]]] = {}
        self._finishes = GroupCommit(self._flush)
        self._statuses: dict[_Finish, str] = {}

    def invalidate(self, tenant_id: str | None = None) -> None:
        if tenant_id is None:
            self._cache.clear()
        else:
            self._cache.pop(tenant_id, None)

    async def subscriptions(self, tenants: Sequence[str]) -> list[Subscription]:
        now = self.clock()
        missing = [t for t in set(tenants) if t not in self._cache or now - self._cache[t][0] >= self.cache_ttl_s]
        if missing:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(_SUBSCRIPTIONS, {"tenants": missing})).all()
            fresh: dict[str, list[Subscription]] = {t: [] for t in missing}
            for r in rows:
                fresh[r.tenant_id].append(
                    Subscription(
                        id=r.id,
                        tenant_id=r.tenant_id,
                        url=r.url,
                        event_types=frozenset(r.event_types),
                        secret=r.secret,
                        previous_secret=r.previous_secret,
                        previous_valid_until=r.previous_valid_until,
                        status=r.status,
                    )
                )
            if len(self._cache) > 10_000:
                self._cache.clear()
            for tenant, subs in fresh.items():
                self._cache[tenant] = (now, subs)
        return [s for t in set(tenants) for s in self._cache[t][1]]

    async def begin(self, jobs: Sequence[WebhookJob]) -> dict[uuid.UUID, Begun]:
        if not jobs:
            return {}
        params = {
            "ids": [j.delivery_id for j in jobs],
            "subs": [j.subscription.id for j in jobs],
            "events": [j.event_id for j in jobs],
            "types": [j.event_type for j in jobs],
            "tenants": [j.tenant_id for j in jobs],
            "keys": [j.customer_key for j in jobs],
            "bodies": [j.body for j in jobs],
        }
        async with driver_connection(self.engine) as conn:
            rows = await _BEGIN.fetch(conn, params)
        # The statement's snapshot predates its own insert: rows it sees existed before this batch.
        return {r["delivery_id"]: Begun(r["status"], r["attempts"], r["last_error"], existed=True) for r in rows}

    async def finish(self, job: WebhookJob, outcome: Outcome, *, total_attempts: int, count: bool = True) -> str | None:
        """The delivery's own round trip, shared with the finishes that queue meanwhile; the
        subscription's status afterwards (None: unchanged and active)."""
        item = _Finish(job, outcome, total_attempts, count)
        await self._finishes.submit(item)
        return self._statuses.pop(item, None)

    async def _flush(self, items: list[_Finish]) -> None:
        attempts = [(f.job.delivery_id, a) for f in items for a in f.outcome.attempts]
        per_sub: dict[uuid.UUID, tuple[bool, int, str]] = {}  # any success, failures after the last one, reason
        for f in items:
            if not f.count:
                continue
            any_ok, trailing, reason = per_sub.get(f.job.subscription.id, (False, 0, ""))
            if f.outcome.status == "sent":
                per_sub[f.job.subscription.id] = (True, 0, reason)
            else:
                why = f"disabled after {self.disable_after} failed deliveries in a row; last: {f.outcome.error}"
                per_sub[f.job.subscription.id] = (any_ok, trailing + 1, why)
        params = {
            "ids": [f.job.delivery_id for f in items],
            "statuses": [f.outcome.status for f in items],
            "totals": [f.total_attempts for f in items],
            "errors": [f.outcome.error for f in items],
            "nexts": [f.outcome.retry_at for f in items],
            "a_ids": [d for d, _ in attempts],
            "a_ns": [a.number for _, a in attempts],
            "a_ats": [a.at for _, a in attempts],
            "a_errors": [a.error for _, a in attempts],
            "a_codes": [a.status_code for _, a in attempts],
            "subs": list(per_sub),
            "any_ok": [v[0] for v in per_sub.values()],
            "fails": [v[1] for v in per_sub.values()],
            "reasons": [v[2] for v in per_sub.values()],
            "threshold": self.disable_after,
        }
        async with driver_connection(self.engine) as conn:
            rows = await _FINISH.fetch(conn, params)
        statuses = {r["id"]: str(r["status"]) for r in rows}
        for f in items:
            status = statuses.get(f.job.subscription.id)
            if status is not None and f.count:
                self._statuses[f] = status
        if any(s == "disabled" for s in statuses.values()):
            self.invalidate()

    # -- admin ------------------------------------------------------------------------------
    async def create(
        self, tenant_id: str, url: str, event_types: list[str], description: str | None, actor: str
    ) -> tuple[str, dict[str, Any]]:
        secret, sub_id = new_secret(), uuid.uuid4()
        async with self.engine.connect() as conn:
            await conn.execute(
                text(
                    """
                    INSERT INTO notifier.webhook_subscriptions
                        (id, tenant_id, url, event_types, description, secret, status, consecutive_failures,
                         created_by)
                    VALUES (:id, :tenant, :url, :types, :description, :secret, 'active', 0, :actor)
                    """
                ),
                {
                    "id": sub_id,
                    "tenant": tenant_id,
                    "url": url,
                    "types": event_types,
                    "description": description,
                    "secret": secret,
                    "actor": actor,
                },
            )
        self.invalidate(tenant_id)
        found = await self.get(tenant_id, sub_id)
        assert found is not None
        return secret, found

    async def list_subscriptions(self, tenant_id: str) -> list[dict[str, Any]]:
        return await self._select(tenant_id, None)

    async def get(self, tenant_id: str, sub_id: uuid.UUID) -> dict[str, Any] | None:
        found = await self._select(tenant_id, sub_id)
        return found[0] if found else None

    async def _select(self, tenant_id: str, sub_id: uuid.UUID | None) -> list[dict[str, Any]]:
        from .webhooks import describe

        query = """
            SELECT id, url, event_types, description, status, disabled_reason, disabled_at, consecutive_failures,
                   previous_valid_until, created_at, created_by
            FROM notifier.webhook_subscriptions
            WHERE tenant_id = :tenant AND deleted_at IS NULL AND (CAST(:id AS uuid) IS NULL OR id = CAST(:id AS uuid))
            ORDER BY created_at
        """
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(query), {"tenant": tenant_id, "id": sub_id})).all()
        return [describe(r) for r in rows]

    async def delete(self, tenant_id: str, sub_id: uuid.UUID) -> bool:
        async with self.engine.connect() as conn:
            found = (
                await conn.execute(
                    text(
                        "UPDATE notifier.webhook_subscriptions SET deleted_at = now() "
                        "WHERE id = :id AND tenant_id = :tenant AND deleted_at IS NULL RETURNING id"
                    ),
                    {"id": sub_id, "tenant": tenant_id},
                )
            ).first()
        self.invalidate(tenant_id)
        return found is not None

    async def rotate(self, tenant_id: str, sub_id: uuid.UUID, overlap: timedelta, now: datetime) -> str | None:
        """A new secret; the current one keeps signing too until now + overlap."""
        secret = new_secret()
        async with self.engine.connect() as conn:
            found = (
                await conn.execute(
                    text(
                        """
                        UPDATE notifier.webhook_subscriptions
                        SET previous_secret = secret, previous_valid_until = :until, secret = :secret
                        WHERE id = :id AND tenant_id = :tenant AND deleted_at IS NULL RETURNING id
                        """
                    ),
                    {"id": sub_id, "tenant": tenant_id, "secret": secret, "until": now + overlap},
                )
            ).first()
        self.invalidate(tenant_id)
        return secret if found else None

    async def enable(self, tenant_id: str, sub_id: uuid.UUID) -> bool:
        async with self.engine.connect() as conn:
            found = (
                await conn.execute(
                    text(
                        """
                        UPDATE notifier.webhook_subscriptions
                        SET status = 'active', consecutive_failures = 0, disabled_reason = NULL, disabled_at = NULL
                        WHERE id = :id AND tenant_id = :tenant AND deleted_at IS NULL RETURNING id
                        """
                    ),
                    {"id": sub_id, "tenant": tenant_id},
                )
            ).first()
        self.invalidate(tenant_id)
        return found is not None

    async def claim_due(self, now: datetime, *, lease_s: float, limit: int) -> list[tuple[WebhookJob, int, datetime]]:
        """Webhook deliveries due for a retry, across tenants: (job, attempts so far, began).
        Claimed by pushing their next_attempt_at past the lease, under SKIP LOCKED: one replica
        retries each; a replica killed mid-round leaves them due again when the lease ends."""
        query = text(
            """
            UPDATE notifier.deliveries AS d SET next_attempt_at = CAST(:lease AS timestamptz)
            FROM notifier.webhook_subscriptions AS s
            WHERE d.delivery_id IN (
                SELECT delivery_id FROM notifier.deliveries
                WHERE status = 'retrying' AND kind = 'webhook' AND next_attempt_at <= CAST(:now AS timestamptz)
                ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED
            ) AND s.id = d.subscription_id
            RETURNING d.delivery_id, d.tenant_id, d.event_id, d.event_type, d.customer_key, d.body, d.attempts,
                      d.created_at, s.id AS sub_id, s.url, s.event_types, s.secret, s.previous_secret,
                      s.previous_valid_until, s.status AS sub_status, s.deleted_at
            """
        )
        params = {"now": now, "lease": now + timedelta(seconds=lease_s), "limit": limit}
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query, params)).all()
        out = []
        for r in sorted(rows, key=lambda r: r.created_at):
            # a deleted subscription: its retries end as failed (disabled, no call), replayable if restored
            status = "disabled" if r.deleted_at is not None else r.sub_status
            sub = Subscription(
                r.sub_id,
                r.tenant_id,
                r.url,
                frozenset(r.event_types),
                r.secret,
                r.previous_secret,
                r.previous_valid_until,
                status,
            )
            job = WebhookJob(r.delivery_id, sub, r.event_id, r.event_type, r.tenant_id, r.customer_key, r.body)
            out.append((job, int(r.attempts), r.created_at))
        return out

    async def claim_replay(
        self,
        tenant_id: str,
        *,
        delivery_id: uuid.UUID | None = None,
        sub_id: uuid.UUID | None = None,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> list[tuple[WebhookJob, int]]:
        """Failed webhook deliveries, set back to 'pending' so that only one replay sends each:
        (job, attempts so far)."""
        query = text(
            """
            UPDATE notifier.deliveries AS d SET status = 'pending', updated_at = now()
            FROM notifier.webhook_subscriptions AS s
            WHERE d.delivery_id IN (
                SELECT delivery_id FROM notifier.deliveries
                WHERE tenant_id = :tenant AND kind = 'webhook' AND status = 'failed'
                  AND (CAST(:id AS uuid) IS NULL OR delivery_id = CAST(:id AS uuid))
                  AND (CAST(:sub AS uuid) IS NULL OR subscription_id = CAST(:sub AS uuid))
                  AND (CAST(:since AS timestamptz) IS NULL OR created_at >= CAST(:since AS timestamptz))
                ORDER BY created_at LIMIT :limit FOR UPDATE SKIP LOCKED
            ) AND s.id = d.subscription_id AND s.deleted_at IS NULL
            RETURNING d.delivery_id, d.event_id, d.event_type, d.customer_key, d.body, d.attempts, d.created_at,
                      s.id AS sub_id, s.url, s.event_types, s.secret, s.previous_secret, s.previous_valid_until,
                      s.status AS sub_status
            """
        )
        params = {"tenant": tenant_id, "id": delivery_id, "sub": sub_id, "since": since, "limit": limit}
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query, params)).all()
        out = []
        for r in sorted(rows, key=lambda r: r.created_at):
            sub = Subscription(
                r.sub_id,
                tenant_id,
                r.url,
                frozenset(r.event_types),
                r.secret,
                r.previous_secret,
                r.previous_valid_until,
                r.sub_status,
            )
            job = WebhookJob(r.delivery_id, sub, r.event_id, r.event_type, tenant_id, r.customer_key, r.body)
            out.append((job, int(r.attempts)))
        return out
