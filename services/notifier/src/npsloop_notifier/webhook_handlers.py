"""Case events to CRM webhooks: every event on `case.events.v1` whose type a subscription of its
tenant names is POSTed, signed, to that subscription; event types added later need no change.

The delivery id derives from (subscription, event), so a redelivered event never posts twice.
Deliveries of one batch run concurrently across customers and in order within one. A failed
delivery (every attempt spent, or a final 4xx) stays in the delivery log as `failed`: the
dead letter, replayable through the API. A subscription failing `disable_after` times in a row
is disabled; its deliveries are then recorded as failed without a call, to replay once fixed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from npsloop_schemas import Envelope, derive_id

from .delivery import Clock, RetryPolicy, Sleep, attempt, per_key, utcnow
from .ports import Begun, Outcome, Subscription, WebhookJob, WebhookStore

log = logging.getLogger(__name__)
FINAL = {"sent", "failed"}


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
            if state.status in FINAL:
                outcomes[index] = Outcome(state.status, error=state.error)  # a redelivered event: never twice
                return
            outcomes[index] = await self.deliver(job, state.attempts)

        await per_key([(j.customer_key, j) for j in jobs], work, self.max_in_flight)
        return outcomes

    async def deliver(self, job: WebhookJob, attempts_so_far: int = 0, *, replay: bool = False) -> Outcome:
        if job.subscription.status == "disabled" and not replay:
            outcome = Outcome("failed", [], "subscription disabled: not sent (replay it once enabled)")
            await self.store.finish(job, outcome, total_attempts=attempts_so_far, count=False)
            return outcome

        async def call() -> int:
            return await self.sender.send(job, job.subscription.signing_secrets(self.clock()))

        outcome = await attempt(call, self.retry, clock=self.clock, sleep=self.sleep, first=attempts_so_far + 1)
        status = await self.store.finish(job, outcome, total_attempts=attempts_so_far + len(outcome.attempts))
        if status == "disabled" and job.subscription.status != "disabled":
            log.warning("webhook subscription %s disabled after repeated failures", job.subscription.id)
        return outcome

    async def replay(self, claimed: Sequence[tuple[WebhookJob, int]]) -> list[Replayed]:
        """Send claimed failed deliveries again (same delivery id, so receivers dedupe)."""
        results: list[Replayed] = [Replayed("", "pending", None)] * len(claimed)

        async def work(index: int, item: tuple[WebhookJob, int]) -> None:
            job, so_far = item
            outcome = await self.deliver(job, so_far, replay=True)
            results[index] = Replayed(str(job.delivery_id), outcome.status, outcome.error)

        await per_key([(j.customer_key, (j, n)) for j, n in claimed], work, min(self.max_in_flight, 8))
        return results
