"""The redelivery loop: deliveries whose receiver was down are retried in the background.

After its in-batch attempts (`max_attempts`, seconds), a delivery that failed transiently (SMTP
refusing or 4xx, connection refused, timeouts, 5xx, 429) is left in `notifier.deliveries` as
`retrying` with `next_attempt_at`, and the consumer moves on: a CRM or SMTP outage never stalls
the batch. This loop claims due rows (`FOR UPDATE SKIP LOCKED`, with a lease: safe across
replicas and across a kill), makes one attempt each, in order per customer, and reschedules with
exponential backoff (`delivery.retry_at`) until it succeeds or `retry_window_s` from the start of
the delivery has passed; only then is it `failed` (replayable, and for emails and call tasks
dead-lettered). The status of an email or call task is published when it is final, with the same
event id as ever: no new status value, the v1 contract is unchanged. It is published before the
row is marked final (Kafka outages retried), so a kill or an outage in between repeats the status
and the attempt (same ids) rather than losing the status.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from npsloop_platform.bus import Bus
from npsloop_platform.component import Background
from npsloop_platform.consumer import dlq_headers
from npsloop_platform.retry import retrying
from npsloop_schemas import NotificationRequestedV1, Topics, serialize_event

from .delivery import Clock, utcnow
from .handlers import Delivered, Notifier
from .webhook_handlers import WebhookDispatcher

log = logging.getLogger(__name__)


class Redelivery(Background):
    """One round per `poll_s` (or at once after a full round). `run_once` is the unit tests' handle."""

    name = "notifier-redelivery"

    def __init__(
        self,
        notifier: Notifier,
        webhooks: WebhookDispatcher,
        bus: Bus,
        *,
        group_id: str,
        poll_s: float = 1.0,
        batch: int = 64,
        lease_s: float = 300.0,
        clock: Clock = utcnow,
    ) -> None:
        super().__init__()
        self.notifier, self.webhooks, self.bus, self.group_id = notifier, webhooks, bus, group_id
        self.poll_s, self.batch, self.lease_s = poll_s, batch, lease_s
        self.clock = clock
        self.rounds = 0

    async def ready(self) -> bool:
        return True

    async def _report(self, request: NotificationRequestedV1, result: Delivered) -> None:
        """The final status event (and a failure's DLQ copy), published before the row is final.
        A Kafka outage is retried here until stop; stopped, the row stays claimed and comes back."""
        key = request.payload.customer_key
        messages: list[tuple[str, bytes, tuple[tuple[str, bytes], ...] | None]] = []
        if result.report is not None:
            messages.append((Topics.NOTIFICATION_STATUS, serialize_event(result.report), None))
        if result.failure is not None:
            headers = tuple(dlq_headers(str(result.failure), result.failure, "notifier-redelivery", self.group_id))
            messages.append(
                (Topics.dlq(Topics.NOTIFICATION_REQUESTED, self.group_id), serialize_event(request), headers)
            )
        for topic, value, extra in messages:

            async def publish(topic: str = topic, value: bytes = value, headers: Any = extra) -> None:
                if headers is None:
                    await self.bus.publish(topic, value, key=key)
                else:
                    await self.bus.publish(topic, value, key=key, headers=headers)

            await retrying(f"publishing {topic}", publish, stopping=self.stopping)

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                done = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database or Kafka is down: the rows stay due, try again
                log.warning("redelivery round failed, retrying: %s", exc)
                done = 0
            if done < self.batch:
                try:  # the poll interval, cut short by stop()
                    await asyncio.wait_for(self.stopping.wait(), self.poll_s)
                except TimeoutError:
                    pass

    async def run_once(self) -> int:
        """One round: claim due webhooks and notifications, attempt each once. Returns how many."""
        self.rounds += 1
        now = self.clock()
        store: Any = self.notifier.store
        hooks: Any = self.webhooks.store
        jobs = await hooks.claim_due(now, lease_s=self.lease_s, limit=self.batch)
        requests: list[tuple[NotificationRequestedV1, int, datetime]] = await store.claim_due(
            now, lease_s=self.lease_s, limit=self.batch
        )
        if jobs:
            await self.webhooks.redeliver(jobs)
        if requests:
            await self.notifier.redeliver(requests, self._report)
        return len(jobs) + len(requests)
