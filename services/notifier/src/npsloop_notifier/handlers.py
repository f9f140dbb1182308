"""Delivery logic: dedupe by delivery id before any external call, retry with backoff and jitter,
log every attempt, report the outcome. No Kafka or SQL here: the ports below."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from npsloop_schemas import (
    DeliveryStatus,
    NotificationKind,
    NotificationRequestedV1,
    NotificationStatusPayloadV1,
    NotificationStatusV1,
)

from .channels import Channel, DeliveryError

LINEAGE = uuid.UUID("3c2b1a09-8f7e-4d6c-a5b4-c3d2e1f0a9b8")


class DeliveryStore(Protocol):
    async def begin(self, request: NotificationRequestedV1) -> str:
        """Insert the delivery as 'pending' unless it exists; return its current status."""
        ...

    async def record_attempt(self, delivery_id: uuid.UUID, attempt: int, error: str | None) -> None: ...

    async def finish(self, delivery_id: uuid.UUID, status: str, attempts: int, error: str | None) -> None: ...


class RetryPolicy(Protocol):
    max_attempts: int
    backoff_initial_s: float
    backoff_max_s: float


class DeliveryFailed(Exception):
    """Every attempt failed: the request goes to the dead-letter topic with this reason."""


Report = Callable[[NotificationStatusV1], Awaitable[None]]


def status_event(
    request: NotificationRequestedV1, status: DeliveryStatus, attempts: int, reason: str | None, source: str
) -> NotificationStatusV1:
    p = request.payload
    return NotificationStatusV1.following(
        request,
        event_id=uuid.uuid5(LINEAGE, f"{p.delivery_id}:{status}"),
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


async def deliver(
    request: NotificationRequestedV1,
    store: DeliveryStore,
    channels: Mapping[NotificationKind, Channel],
    policy: RetryPolicy,
    report: Report,
    source: str,
) -> DeliveryStatus | None:
    """Deliver once. Returns the final status, or None when this delivery id was already done."""
    p = request.payload
    current = await store.begin(request)
    if current in (DeliveryStatus.SENT, DeliveryStatus.SKIPPED, DeliveryStatus.FAILED):
        return None  # a redelivery of a finished request: never contact the customer twice
    channel = channels.get(p.kind)
    if channel is None:
        reason = f"no channel configured for {p.kind}"
        await store.finish(p.delivery_id, DeliveryStatus.SKIPPED, 0, reason)
        await report(status_event(request, DeliveryStatus.SKIPPED, 0, reason, source))
        return DeliveryStatus.SKIPPED

    attempts = 0
    last_error: str | None = None
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(policy.max_attempts),
            wait=wait_exponential_jitter(multiplier=policy.backoff_initial_s, max=policy.backoff_max_s),
            retry=retry_if_exception(lambda e: isinstance(e, DeliveryError) and not e.permanent),
            reraise=True,
        ):
            with attempt:
                attempts += 1
                try:
                    await channel.deliver(request)
                except DeliveryError as exc:
                    last_error = str(exc)
                    await store.record_attempt(p.delivery_id, attempts, last_error)
                    raise
                await store.record_attempt(p.delivery_id, attempts, None)
    except DeliveryError as exc:
        await store.finish(p.delivery_id, DeliveryStatus.FAILED, attempts, last_error)
        await report(status_event(request, DeliveryStatus.FAILED, attempts, last_error, source))
        raise DeliveryFailed(f"{p.kind} {p.delivery_id} failed after {attempts} attempt(s): {last_error}") from exc
    await store.finish(p.delivery_id, DeliveryStatus.SENT, attempts, None)
    await report(status_event(request, DeliveryStatus.SENT, attempts, None, source))
    return DeliveryStatus.SENT
