"""The transactional-outbox relay: publish committed outbox rows in order, then mark them sent.

Only one relay publishes at a time (a transaction-level advisory lock per table), so rows leave
in id order and one customer's events stay ordered even with several replicas. Rows are claimed
with FOR UPDATE SKIP LOCKED, published as one batch whose acks are awaited once, and marked sent
in one statement in the same transaction: a crash between ack and commit re-publishes (at least
once; consumers dedupe on event_id).

Wake-ups are coalesced: `wake()` after each committed batch only sets a flag; the relay waits
`debounce_s` before it reads, so that one read carries what several commits wrote. Replicas that
were not woken find the rows on their next poll (`poll_s`).
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Table, func, select, text, update

from . import metrics, tracing
from .bus.base import Bus
from .component import Background
from .db import Database
from .retry import retrying

log = logging.getLogger(__name__)


class OutboxRelay(Background):
    def __init__(
        self,
        db: Database,
        bus: Bus,
        table: Table,
        *,
        batch: int = 1000,
        poll_s: float = 0.5,
        debounce_s: float = 0.005,
        group: str | None = None,
    ) -> None:
        """`group`: the consumer group whose handlers write the rows (their spans are continued)."""
        super().__init__()
        self.group = group
        self.name = f"outbox:{table.fullname}"
        self.db, self.bus, self.table = db, bus, table
        self.batch, self.poll_s, self.debounce_s = batch, poll_s, debounce_s
        self.published = 0
        self.batches = 0
        self._wake = asyncio.Event()
        self._m_published = metrics.OUTBOX_PUBLISHED.labels(table.fullname)

    async def scrape(self) -> None:
        """At scrape time (GET /metrics): rows waiting and the age of the oldest (outbox stuck)."""
        t = self.table
        created = t.c.get("created_at")
        age = func.extract("epoch", func.now() - func.min(created)) if created is not None else func.count() * 0
        async with self.db.session() as session:
            depth, oldest = (await session.execute(select(func.count(), age).where(t.c.published_at.is_(None)))).one()
        metrics.OUTBOX_DEPTH.labels(t.fullname).set(depth)
        metrics.OUTBOX_OLDEST.labels(t.fullname).set(float(oldest or 0))

    def wake(self) -> None:
        """Call after committing outbox rows to publish them without waiting for the next poll."""
        self._wake.set()

    def stop_requested(self) -> None:
        self._wake.set()

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
            futures = [
                await self.bus.send(r.topic, r.value, key=r.key, headers=tracing.outbox_headers(r.value, self.group))
                for r in rows
            ]
            await asyncio.gather(*futures)
            await session.execute(update(t).where(t.c.id.in_([r.id for r in rows])).values(published_at=func.now()))
        self.published += len(rows)
        self.batches += 1
        self._m_published.inc(len(rows))
        return len(rows)

    async def run(self) -> None:
        while not self.stopping.is_set():
            # Kafka or Postgres down: retried with backoff until it passes; nothing is lost.
            n = await retrying(self.name, self.relay_once, stopping=self.stopping, transient=lambda _: True)
            if n >= self.batch:
                continue  # a backlog: go on at once
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            except TimeoutError:
                continue
            await self.sleep(self.debounce_s)  # let concurrent commits land: one read carries them all
