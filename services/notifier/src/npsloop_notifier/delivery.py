"""What every delivery shares: attempts with exponential backoff and jitter (or the receiver's
Retry-After), and a batch run concurrently across keys but in order within one key."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

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


class _Wait:
    """Exponential backoff with jitter; a Retry-After the receiver sent wins."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.backoff = wait_exponential_jitter(
            multiplier=policy.backoff_initial_s, max=policy.backoff_max_s, jitter=policy.backoff_initial_s
        )

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, DeliveryError) and exc.retry_after_s is not None:
            return exc.retry_after_s
        return float(self.backoff(state))


def _retryable(policy: RetryPolicy) -> Callable[[BaseException], bool]:
    limit = float(getattr(policy, "retry_after_max_s", 120.0))

    def retryable(exc: BaseException) -> bool:
        if not isinstance(exc, DeliveryError) or exc.permanent:
            return False
        return exc.retry_after_s is None or exc.retry_after_s <= limit

    return retryable


async def attempt(
    call: Callable[[], Awaitable[int | None]],
    policy: RetryPolicy,
    *,
    clock: Clock = utcnow,
    sleep: Sleep = asyncio.sleep,
    first: int = 1,
) -> Outcome:
    """Call until it succeeds, fails permanently or runs out of attempts; log every attempt."""
    outcome = Outcome(str(DeliveryStatus.SENT))
    try:
        async for step in AsyncRetrying(
            stop=stop_after_attempt(policy.max_attempts),
            wait=_Wait(policy),
            retry=retry_if_exception(_retryable(policy)),
            sleep=sleep,
            reraise=True,
        ):
            with step:
                number = first + len(outcome.attempts)
                try:
                    code = await call()
                except DeliveryError as exc:
                    outcome.attempts.append(Attempt(number, clock(), str(exc), exc.status_code))
                    raise
                outcome.attempts.append(Attempt(number, clock(), None, code))
    except DeliveryError as exc:
        outcome.status, outcome.error = str(DeliveryStatus.FAILED), str(exc)
        limit = getattr(policy, "retry_after_max_s", 120.0)
        if exc.retry_after_s is not None and exc.retry_after_s > limit:
            outcome.error += f" (Retry-After {exc.retry_after_s:g} s is over the {limit:g} s we wait; replay it later)"
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
