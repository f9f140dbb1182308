"""The transactional-outbox relay: publish committed outbox rows in order, then mark them sent.

Only one relay publishes at a time (a transaction-level advisory lock per table), so rows leave
in id order and one customer's events stay ordered even with several replicas. Rows are claimed
with FOR UPDATE SKIP LOCKED, published, acked by Kafka, and marked in the same transaction: a
crash between ack and commit re-publishes (at least once; consumers dedupe on event_id).
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Table, func, select, text, update

from .bus.base import Bus
from .db import Database

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, db: Database, bus: Bus, table: Table, *, batch: int = 500, poll_s: float = 0.1) -> None:
        self.name = f"outbox:{table.fullname}"
        self.db, self.bus, self.table = db, bus, table
        self.batch, self.poll_s = batch, poll_s
        self.published = 0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Call after committing outbox rows to publish them without waiting for the next poll."""
        self._wake.set()

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def ready(self) -> bool:
        return self._task is not None and not self._task.done()

    async def relay_once(self) -> int:
        """Publish one batch; returns how many rows were published (0: nothing to do or not leader)."""
        t = self.table
        async with self.db.session() as session, session.begin():
            leader = (
                await session.execute(text("SELECT pg_try_advisory_xact_lock(hashtext(:n))"), {"n": self.name})
            ).scalar_one()
            if not leader:
                return 0
            rows = (
                await session.execute(
                    select(t.c.id, t.c.topic, t.c.key, t.c.value)
                    .where(t.c.published_at.is_(None))
                    .order_by(t.c.id)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            futures = [await self.bus.send(r.topic, r.value, key=r.key) for r in rows]
            await asyncio.gather(*futures)
            await session.execute(update(t).where(t.c.id.in_([r.id for r in rows])).values(published_at=func.now()))
        self.published += len(rows)
        return len(rows)

    async def _run(self) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            try:
                if await self.relay_once():
                    delay = 0.2
                    continue
            except Exception as exc:  # Kafka or Postgres down: retried, nothing is lost
                log.warning("outbox relay failed, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            except TimeoutError:
                pass
