"""Case events to CRM webhooks: every event on `case.events.v1` whose type a subscription of its
tenant names is POSTed, signed, to that subscription; event types added later need no change.

The delivery id derives from (subscription, event), so a redelivered event never posts twice
(and a post made just before a crash, not yet recorded, is re-sent with the same webhook-id).
Deliveries of one batch run concurrently across customers and in order within one. A receiver
that is down (refused, timeout, 5xx, 429) after the in-batch attempts leaves the delivery
`retrying`: the redelivery loop (`retry.py`) tries again with backoff until `retry_window_s`
has passed, and the batch moves on. A delivery that fails for good (the window over, or a final
4xx) stays in the delivery log as `failed`: the dead letter, replayable through the API. A
subscription failing `disable_after` deliveries in a row (for good) is disabled; its
deliveries are then recorded as failed without a call, to replay once fixed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from npsloop_schemas import Envelope, derive_id

from .delivery import Clock, RetryPolicy, Sleep, attempt, one_attempt, per_key, retry_at, utcnow
from .ports import Begun, Outcome, Subscription, WebhookJob, WebhookStore

log = logging.getLogger(__name__)
FINAL = {"sent", "failed"}
RETRYING = "retrying"  # the redelivery loop owns it


class Sender(Protocol):
    async def send(self, job: WebhookJob, secrets_: tuple[str, ...]) -> int: ...


@dataclass(frozen=True)
class Replayed:
    delivery_id: str
    status: str
    error: str | None


@dataclass
class WebhookDispatcher:
    store: WebhookStore
    sender: Sender
    retry: RetryPolicy
    max_in_flight: int = 64
    clock: Clock = utcnow
    sleep: Sleep = asyncio.sleep

    def jobs(self, events: Sequence[tuple[Envelope, bytes, str]], subs: Sequence[Subscription]) -> list[WebhookJob]:
        by_tenant: dict[str, list[Subscription]] = {}
        for s in subs:
            by_tenant.setdefault(s.tenant_id, []).append(s)
        out = []
        for event, body, key in events:
            for sub in by_tenant.get(event.tenant_id, []):
                if sub.matches(event.event_type):
                    out.append(
                        WebhookJob(
                            delivery_id=derive_id(f"webhook:{sub.id}", event.event_id),
                            subscription=sub,
                            event_id=event.event_id,
                            event_type=event.event_type,
                            tenant_id=event.tenant_id,
                            customer_key=key,
                            body=body.decode(),
                        )
                    )
        return out

    async def handle(self, events: Sequence[tuple[Envelope, bytes, str]]) -> list[Outcome]:
        """Fan a batch of `(event, body, key)` out to the matching subscriptions."""
        if not events:
            return []
        subs = await self.store.subscriptions(sorted({e.tenant_id for e, _, _ in events}))
        jobs = self.jobs(events, subs)
        if not jobs:
            return []
        begun = await self.store.begin(jobs)
        outcomes: list[Outcome] = [Outcome("pending")] * len(jobs)

        async def work(index: int, job: WebhookJob) -> None:
            state = begun.get(job.delivery_id, Begun())
            if state.status in FINAL or state.status == RETRYING:
                outcomes[index] = Outcome(state.status, error=state.error)  # a redelivered event: never twice
                return
            outcomes[index] = await self.deliver(job, state.attempts)

        await per_key([(j.customer_key, j) for j in jobs], work, self.max_in_flight)
        return outcomes

    async def deliver(
        self,
        job: WebhookJob,
        attempts_so_far: int = 0,
        *,
        replay: bool = False,
        began: datetime | None = None,
        once: bool = False,
    ) -> Outcome:
        """Attempt `job` (`once`: a single attempt, the redelivery loop's round). `began`: when
        the delivery was first attempted, the start of its retry window (None: now)."""
        if job.subscription.status == "disabled" and not replay:
            outcome = Outcome("failed", [], "subscription disabled: not sent (replay it once enabled)")
            await self.store.finish(job, outcome, total_attempts=attempts_so_far, count=False)
            return outcome

        async def call() -> int:
            return await self.sender.send(job, job.subscription.signing_secrets(self.clock()))

        policy = one_attempt(self.retry) if once else self.retry
        outcome = await attempt(call, policy, clock=self.clock, sleep=self.sleep, first=attempts_so_far + 1)
        total = attempts_so_far + len(outcome.attempts)
        if outcome.status == "failed" and outcome.retryable and not replay:
            now = self.clock()
            outcome.retry_at = retry_at(self.retry, began or now, now, total)
            if outcome.retry_at is not None:
                outcome.status = RETRYING  # not counted against the subscription: the receiver is down
            else:
                outcome.error = f"{outcome.error} (still failing at the end of the retry window)"
        count = outcome.status != RETRYING
        status = await self.store.finish(job, outcome, total_attempts=total, count=count)
        if status == "disabled" and job.subscription.status != "disabled":
            log.warning("webhook subscription %s disabled after repeated failures", job.subscription.id)
        return outcome

    async def redeliver(self, claimed: Sequence[tuple[WebhookJob, int, datetime]]) -> list[Outcome]:
        """One attempt each for claimed due retries `(job, attempts so far, began)`; ordered per key."""
        results: list[Outcome] = [Outcome("pending")] * len(claimed)

        async def work(index: int, item: tuple[WebhookJob, int, datetime]) -> None:
            job, so_far, began = item
            results[index] = await self.deliver(job, so_far, began=began, once=True)

        await per_key([(j.customer_key, item) for item in claimed for j in [item[0]]], work, self.max_in_flight)
        return results

    async def replay(self, claimed: Sequence[tuple[WebhookJob, int]]) -> list[Replayed]:
        """Send claimed failed deliveries again (same delivery id, so receivers dedupe)."""
        results: list[Replayed] = [Replayed("", "pending", None)] * len(claimed)

        async def work(index: int, item: tuple[WebhookJob, int]) -> None:
            job, so_far = item
            outcome = await self.deliver(job, so_far, replay=True)
            results[index] = Replayed(str(job.delivery_id), outcome.status, outcome.error)

        await per_key([(j.customer_key, (j, n)) for j, n in claimed], work, min(self.max_in_flight, 8))
        return results
