"""Delivery logic: dedupe by delivery id before any external call, retry with backoff and jitter,
log every attempt, report the outcome. No Kafka or SQL here: the ports in `ports.py`.

A batch is delivered concurrently across customers (at most `max_in_flight` calls at a time) and
in order within one customer. A delivery costs two database round trips: the batch's `begin`
(shared by the whole batch) and its own `finish`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from npsloop_schemas import (
    DeliveryStatus,
    NotificationKind,
    NotificationRequestedV1,
    NotificationStatusPayloadV1,
    NotificationStatusV1,
    derive_id,
)

from .ports import Attempt, Begun, Channel, DeliveryError, DeliveryStore, Outcome

log = logging.getLogger(__name__)
FINAL = {str(DeliveryStatus.SENT), str(DeliveryStatus.SKIPPED), str(DeliveryStatus.FAILED)}


class RetryPolicy(Protocol):
    max_attempts: int
    backoff_initial_s: float
    backoff_max_s: float


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


async def attempt_delivery(
    request: NotificationRequestedV1,
    channel: Channel,
    policy: RetryPolicy,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Outcome:
    """Call the channel until it succeeds, fails permanently or runs out of attempts."""
    outcome = Outcome(str(DeliveryStatus.SENT))
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(policy.max_attempts),
            wait=wait_exponential_jitter(multiplier=policy.backoff_initial_s, max=policy.backoff_max_s),
            retry=retry_if_exception(lambda e: isinstance(e, DeliveryError) and not e.permanent),
            reraise=True,
        ):
            with attempt:
                number = len(outcome.attempts) + 1
                try:
                    await channel.deliver(request)
                except DeliveryError as exc:
                    outcome.attempts.append(Attempt(number, clock(), str(exc)))
                    raise
                outcome.attempts.append(Attempt(number, clock()))
    except DeliveryError as exc:
        outcome.status, outcome.error = str(DeliveryStatus.FAILED), str(exc)
    return outcome


async def deliver(
    request: NotificationRequestedV1,
    begun: Begun,
    store: DeliveryStore,
    channels: Mapping[NotificationKind, Channel],
    policy: RetryPolicy,
    source: str,
) -> Delivered:
    """Deliver once. A delivery that is already final is reported again, never repeated."""
    p = request.payload
    if begun.status in FINAL:
        # A redelivery: the customer was contacted (or not) already. Report it again, with the
        # same event id, in case the first report was lost in a crash; downstream dedupes.
        status = DeliveryStatus(begun.status)
        return Delivered(status_event(request, status, begun.attempts, begun.error, source))
    if begun.existed:
        log.warning("delivery %s was in doubt after a crash; delivering again", p.delivery_id)
    channel = channels.get(p.kind)
    if channel is None:
        outcome = Outcome(str(DeliveryStatus.SKIPPED), error=f"no channel configured for {p.kind}")
    else:
        outcome = await attempt_delivery(request, channel, policy)
    await store.finish(p.delivery_id, outcome)
    status = DeliveryStatus(outcome.status)
    report = status_event(request, status, len(outcome.attempts), outcome.error, source)
    if status is DeliveryStatus.FAILED:
        reason = f"{p.kind} {p.delivery_id} failed after {len(outcome.attempts)} attempt(s): {outcome.error}"
        return Delivered(report, DeliveryFailed(reason))
    return Delivered(report)


async def deliver_batch(
    requests: Sequence[tuple[NotificationRequestedV1, str]],
    store: DeliveryStore,
    channels: Mapping[NotificationKind, Channel],
    policy: RetryPolicy,
    source: str,
    max_in_flight: int,
) -> list[Delivered]:
    """Deliver a batch of `(request, customer key)`: concurrent across customers, ordered within
    one, at most `max_in_flight` at a time. Results come back in the order of `requests`."""
    begun = await store.begin([r for r, _ in requests])
    results: list[Delivered] = [Delivered(None)] * len(requests)
    by_customer: dict[str, list[int]] = {}
    seen = set()
    for index, (req, key) in enumerate(requests):
        if req.payload.delivery_id in seen:
            continue  # the same request twice in one batch: the first one delivers it
        seen.add(req.payload.delivery_id)
        by_customer.setdefault(key, []).append(index)
    slots = asyncio.Semaphore(max_in_flight)

    async def one_customer(indexes: list[int]) -> None:
        for index in indexes:
            req = requests[index][0]
            async with slots:
                results[index] = await deliver(
                    req, begun.get(req.payload.delivery_id, Begun()), store, channels, policy, source
                )

    try:
        async with asyncio.TaskGroup() as group:  # one failure (the database) cancels the rest
            for indexes in by_customer.values():
                group.create_task(one_customer(indexes))
    except ExceptionGroup as eg:
        raise eg.exceptions[0] from eg  # the edge classifies the cause (an outage is retried)
    return results
