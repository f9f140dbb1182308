"""What every delivery shares: attempts with exponential backoff and jitter (or the receiver's
Retry-After), the background retry schedule after them, and a batch run concurrently across keys
but in order within one key."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from npsloop_schemas import DeliveryStatus

from .ports import Attempt, DeliveryError, Outcome

T = TypeVar("T")
Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def utcnow() -> datetime:
    return datetime.now(UTC)


class RetryPolicy(Protocol):
    max_attempts: int
    backoff_initial_s: float
    backoff_max_s: float


@dataclass
class OneAttempt:
    """A redelivery round's policy: one attempt, then the round reschedules (or fails) it."""

    backoff_initial_s: float
    backoff_max_s: float
    retry_after_max_s: float
    max_attempts: int = 1


def one_attempt(policy: RetryPolicy) -> OneAttempt:
    return OneAttempt(
        policy.backoff_initial_s, policy.backoff_max_s, float(getattr(policy, "retry_after_max_s", 120.0))
    )


def retry_at(policy: RetryPolicy, began: datetime, now: datetime, failures: int) -> datetime | None:
    """When to retry a delivery whose receiver is down, after `failures` failed attempts in all,
    or None once its retry window (`retry_window_s` from `began`) is over: then it has failed.

    Exponential like Standard Webhooks' and Stripe's schedules: 2 s, 4 s, 8 s, ... at most
    `retry_backoff_max_s`, with up to 10 % jitter so that a recovered receiver is not hit by every
    delivery in the same second."""
    window = float(getattr(policy, "retry_window_s", 0.0))
    cap = float(getattr(policy, "retry_backoff_max_s", 600.0))
    wait = min(2.0 ** min(max(failures - policy.max_attempts, 0) + 1, 30), cap)
    at = now + timedelta(seconds=wait * (1 + random.uniform(0, 0.1)))
    return at if at <= began + timedelta(seconds=window) else None


def backoff_s(policy: RetryPolicy, retry: int) -> float:
    """Exponential backoff with jitter before retry number `retry` (1, 2, ...): the n-th wait is
    initial * 2^(n-1), at most backoff_max_s, plus up to `initial` of random jitter."""
    base = min(policy.backoff_initial_s * 2.0 ** (retry - 1), policy.backoff_max_s)
    return float(base + random.uniform(0, policy.backoff_initial_s))


async def attempt(
    call: Callable[[], Awaitable[int | None]],
    policy: RetryPolicy,
    *,
    clock: Clock = utcnow,
    sleep: Sleep = asyncio.sleep,
    first: int = 1,
) -> Outcome:
    """Call until it succeeds, fails permanently or runs out of attempts; log every attempt.

    A plain loop rather than tenacity: its per-call introspection cost more than a webhook POST."""
    outcome = Outcome(str(DeliveryStatus.SENT))
    limit = float(getattr(policy, "retry_after_max_s", 120.0))
    for n in range(1, policy.max_attempts + 1):
        number = first + n - 1
        try:
            code = await call()
        except DeliveryError as exc:
            outcome.attempts.append(Attempt(number, clock(), str(exc), exc.status_code))
            too_long = exc.retry_after_s is not None and exc.retry_after_s > limit
            if exc.permanent or too_long or n == policy.max_attempts:
                outcome.status, outcome.error = str(DeliveryStatus.FAILED), str(exc)
                outcome.retryable = not exc.permanent
                if too_long:
                    outcome.error += (
                        f" (Retry-After {exc.retry_after_s:g} s is over the {limit:g} s we wait; replay it later)"
                    )
                return outcome
            await sleep(exc.retry_after_s if exc.retry_after_s is not None else backoff_s(policy, n))
            continue
        outcome.attempts.append(Attempt(number, clock(), None, code))
        return outcome
    return outcome


async def per_key(items: Sequence[tuple[str, T]], work: Callable[[int, T], Awaitable[Any]], max_in_flight: int) -> None:
    """`work(index, item)` for every item: concurrent across keys, in order within one key, at most
    `max_in_flight` at a time. One failure (the database) cancels the rest and is raised."""
    by_key: dict[str, list[int]] = {}
    for index, (key, _) in enumerate(items):
        by_key.setdefault(key, []).append(index)
    slots = asyncio.Semaphore(max_in_flight)

    async def one_key(indexes: list[int]) -> None:
        for index in indexes:
            async with slots:
                await work(index, items[index][1])

    try:
        async with asyncio.TaskGroup() as group:
            for indexes in by_key.values():
                group.create_task(one_key(indexes))
    except ExceptionGroup as eg:
        raise eg.exceptions[0] from eg  # the edge classifies the cause (an outage is retried)
