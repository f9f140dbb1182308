"""Delivery logic: dedupe by delivery id before any external call, the contact policy, retry with
backoff and jitter, log every attempt, report the outcome. No Kafka or SQL here: the ports in
`ports.py`.

A receiver that is down (SMTP refusing or 4xx, timeouts, 5xx, 429) after the in-batch attempts
leaves the delivery `retrying` in the store, with no status reported yet: the redelivery loop
(`retry.py`) tries again with backoff until `retry_window_s` has passed, and only then reports
it `failed` and dead-letters the request. The batch moves on meanwhile.

A batch is delivered concurrently across customers (at most `max_in_flight` calls at a time) and
in order within one customer. A delivery costs two database round trips: the batch's `begin`
(shared by the whole batch: dedupe, suppression list, frequency-cap claims) and its own `finish`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from npsloop_schemas import (
    DeliveryStatus,
    NotificationKind,
    NotificationRequestedV1,
    NotificationStatusPayloadV1,
    NotificationStatusV1,
    derive_id,
)

from .delivery import Clock, RetryPolicy, Sleep, attempt, one_attempt, per_key, retry_at, utcnow
from .policy import ContactPolicy
from .ports import Begun, Channel, DeliveryStore, Gate, Outcome

log = logging.getLogger(__name__)
FINAL = {
    str(s) for s in (DeliveryStatus.SENT, DeliveryStatus.SKIPPED, DeliveryStatus.FAILED, DeliveryStatus.SUPPRESSED)
}


NO_GATE = Gate()
RETRYING = "retrying"  # the redelivery loop owns it; no status reported yet


class DeliveryFailed(Exception):
    """Every attempt failed: the request goes to the dead-letter topic with this reason."""


@dataclass(frozen=True)
class Delivered:
    """What one request came to: the status to report (None: a repeat within the batch) and,
    when every attempt failed, the reason to dead-letter it with."""

    report: NotificationStatusV1 | None
    failure: DeliveryFailed | None = None


def status_event(
    request: NotificationRequestedV1, status: DeliveryStatus, attempts: int, reason: str | None, source: str
) -> NotificationStatusV1:
    p = request.payload
    return NotificationStatusV1.following(
        request,
        event_id=derive_id(f"notification.status:{status}", p.delivery_id),
        source=source,
        payload=NotificationStatusPayloadV1(
            delivery_id=p.delivery_id,
            kind=p.kind,
            status=status,
            attempts=attempts,
            reason=reason,
            case_id=p.case_id,
            feedback_event_id=p.feedback_event_id,
        ),
    )


@dataclass
class Notifier:
    """Everything delivery needs, injected: the store, the channels, the policy, the clock."""

    store: DeliveryStore
    channels: Mapping[NotificationKind, Channel]
    retry: RetryPolicy
    source: str = "npsloop-notifier"
    max_in_flight: int = 64
    contact: ContactPolicy | None = None
    clock: Clock = utcnow
    sleep: Sleep = asyncio.sleep

    def _verdict(self, request: NotificationRequestedV1, begun: Begun, gate: Gate) -> str | None:
        """Why the contact policy holds this message back, or None."""
        if begun.blocked:
            return f"suppression list: {begun.blocked}"
        if gate.not_before is not None:
            holds = begun.claimed or (begun.existed and begun.holder == request.payload.delivery_id)
            if not holds:
                if self.contact is None:
                    return "frequency cap"
                return self.contact.cap_reason(request, begun.last_contact_at)
        if self.contact is not None:
            return self.contact.quiet_hours(request, self.clock())
        return None

    async def deliver(self, request: NotificationRequestedV1, begun: Begun, gate: Gate = NO_GATE) -> Delivered:
        """Deliver once. A delivery that is already final is reported again, never repeated."""
        p = request.payload
        if begun.status in FINAL:
            # A redelivery: the customer was contacted (or not) already. Report it again, with the
            # same event id, in case the first report was lost in a crash; downstream dedupes.
            return Delivered(
                status_event(request, DeliveryStatus(begun.status), begun.attempts, begun.error, self.source)
            )
        if begun.status == RETRYING:
            return Delivered(None)  # a redelivered request: the redelivery loop retries it
        if begun.existed:
            log.warning("delivery %s was in doubt after a crash; delivering again", p.delivery_id)
        channel = self.channels.get(p.kind)
        held = self._verdict(request, begun, gate)
        if held is not None:
            outcome = Outcome(str(DeliveryStatus.SUPPRESSED), error=held)
        elif channel is None:
            outcome = Outcome(str(DeliveryStatus.SKIPPED), error=f"no channel configured for {p.kind}")
        else:

            async def call(channel: Channel = channel) -> None:
                await channel.deliver(request)

            outcome = await attempt(call, self.retry, clock=self.clock, sleep=self.sleep)
            if outcome.status == str(DeliveryStatus.FAILED) and outcome.retryable:
                now = self.clock()
                outcome.retry_at = retry_at(self.retry, now, now, len(outcome.attempts))
                if outcome.retry_at is not None:
                    outcome.status = RETRYING
        await self.store.finish(request, outcome, self.clock(), capped=gate.not_before is not None)
        if outcome.status == RETRYING:
            return Delivered(None)
        return self._reported(request, outcome, len(outcome.attempts))

    def _reported(self, request: NotificationRequestedV1, outcome: Outcome, attempts: int) -> Delivered:
        p = request.payload
        status = DeliveryStatus(outcome.status)
        report = status_event(request, status, attempts, outcome.error, self.source)
        if status is DeliveryStatus.FAILED:
            reason = f"{p.kind} {p.delivery_id} failed after {attempts} attempt(s): {outcome.error}"
            return Delivered(report, DeliveryFailed(reason))
        return Delivered(report)

    async def redeliver(
        self,
        claimed: Sequence[tuple[NotificationRequestedV1, int, datetime]],
        report: Callable[[NotificationRequestedV1, Delivered], Awaitable[None]] | None = None,
    ) -> list[Delivered]:
        """One attempt each for claimed due retries `(request, attempts so far, began)`, in order
        per customer: sent, failed (the window over, or a permanent error) or retrying again.
        Results in the order of `claimed` (report None: still retrying).

        `report(request, delivered)` runs for a final outcome BEFORE its row is marked final: if the
        status event cannot be published (or the process dies first), the row stays claimed and
        comes due again when its lease ends, so the status is never lost (at least once, same ids)."""
        results: list[Delivered] = [Delivered(None)] * len(claimed)

        async def work(index: int, item: tuple[NotificationRequestedV1, int, datetime]) -> None:
            request, so_far, began = item
            channel = self.channels.get(request.payload.kind)
            if channel is None:
                why = f"no channel configured for {request.payload.kind}"
                outcome = Outcome(str(DeliveryStatus.SKIPPED), error=why)
            else:

                async def call(channel: Channel = channel) -> None:
                    await channel.deliver(request)

                policy = one_attempt(self.retry)
                outcome = await attempt(call, policy, clock=self.clock, sleep=self.sleep, first=so_far + 1)
            total = so_far + len(outcome.attempts)
            if outcome.status == str(DeliveryStatus.FAILED) and outcome.retryable:
                now = self.clock()
                outcome.retry_at = retry_at(self.retry, began, now, total)
                if outcome.retry_at is not None:
                    outcome.status = RETRYING
                else:
                    outcome.error = f"{outcome.error} (still failing at the end of the retry window)"
            if outcome.status != RETRYING:
                results[index] = self._reported(request, outcome, total)
                if report is not None:
                    await report(request, results[index])
            await self.store.finish(request, outcome, self.clock(), total=total)

        await per_key([(r.payload.customer_key, item) for item in claimed for r in [item[0]]], work, self.max_in_flight)
        return results

    async def deliver_batch(self, requests: Sequence[tuple[NotificationRequestedV1, str]]) -> list[Delivered]:
        """Deliver a batch of `(request, customer key)`: concurrent across customers, ordered within
        one, at most `max_in_flight` at a time. Results come back in the order of `requests`."""
        now = self.clock()
        unique: list[tuple[int, NotificationRequestedV1, str]] = []
        seen = set()
        for index, (req, key) in enumerate(requests):
            if req.payload.delivery_id not in seen:  # the same request twice in one batch: the first delivers
                seen.add(req.payload.delivery_id)
                unique.append((index, req, key))
        gates = [self.contact.gate(r, now) if self.contact else Gate() for _, r, _ in unique]
        begun = await self.store.begin([r for _, r, _ in unique], gates, now)
        results: list[Delivered] = [Delivered(None)] * len(requests)

        async def work(_: int, item: tuple[int, NotificationRequestedV1, Gate]) -> None:
            index, req, gate = item
            results[index] = await self.deliver(req, begun.get(req.payload.delivery_id, Begun()), gate)

        await per_key(
            [(key, (i, r, g)) for (i, r, key), g in zip(unique, gates, strict=True)], work, self.max_in_flight
        )
        return results
