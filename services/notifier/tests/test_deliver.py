"""Delivery logic against fakes: dedupe before any call, retries with backoff, permanent failures."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from npsloop_notifier.channels import DeliveryError
from npsloop_notifier.handlers import DeliveryFailed, deliver
from npsloop_schemas import (
    Contact,
    NotificationKind,
    NotificationRequestedPayloadV1,
    NotificationRequestedV1,
    NotificationStatusV1,
)


@dataclass
class Policy:
    max_attempts: int = 4
    backoff_initial_s: float = 0.001
    backoff_max_s: float = 0.002


class FakeStore:
    def __init__(self) -> None:
        self.status: dict[uuid.UUID, str] = {}
        self.attempts: list[tuple[int, str | None]] = []

    async def begin(self, request: NotificationRequestedV1) -> str:
        return self.status.setdefault(request.payload.delivery_id, "pending")

    async def record_attempt(self, delivery_id: uuid.UUID, attempt: int, error: str | None) -> None:
        self.attempts.append((attempt, error))

    async def finish(self, delivery_id: uuid.UUID, status: str, attempts: int, error: str | None) -> None:
        self.status[delivery_id] = status


class FakeChannel:
    def __init__(self, failures: list[DeliveryError]) -> None:
        self.failures, self.calls = failures, 0

    async def deliver(self, request: NotificationRequestedV1) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)


def request(kind: NotificationKind = NotificationKind.CALL_TASK) -> NotificationRequestedV1:
    return NotificationRequestedV1(
        event_id=uuid.uuid4(),
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        tenant_id="acme",
        source="a",
        correlation_id=uuid.uuid4(),
        payload=NotificationRequestedPayloadV1(
            delivery_id=uuid.uuid4(),
            kind=kind,
            customer_key="acme:c",
            recipient=Contact(phone="+4915112345678"),
            feedback_event_id=uuid.uuid4(),
            score=2,
        ),
    )


async def run(
    req: NotificationRequestedV1, store: FakeStore, channel: FakeChannel
) -> tuple[object, list[NotificationStatusV1]]:
    reports: list[NotificationStatusV1] = []

    async def report(s: NotificationStatusV1) -> None:
        reports.append(s)

    result = await deliver(req, store, {NotificationKind.CALL_TASK: channel}, Policy(), report, "notifier")
    return result, reports


async def test_transient_failures_are_retried_and_every_attempt_is_logged() -> None:
    store, channel, req = FakeStore(), FakeChannel([DeliveryError("503"), DeliveryError("timeout")]), request()
    result, reports = await run(req, store, channel)
    assert result == "sent" and channel.calls == 3
    assert store.attempts == [(1, "503"), (2, "timeout"), (3, None)]
    assert [(r.payload.status, r.payload.attempts) for r in reports] == [("sent", 3)]


async def test_a_finished_delivery_is_never_repeated() -> None:
    store, channel, req = FakeStore(), FakeChannel([]), request()
    await run(req, store, channel)
    result, reports = await run(req, store, channel)
    assert result is None and channel.calls == 1 and reports == []


async def test_permanent_failure_is_not_retried_and_raises_for_the_dlq() -> None:
    store, channel, req = FakeStore(), FakeChannel([DeliveryError("HTTP 400 bad phone", permanent=True)]), request()
    with pytest.raises(DeliveryFailed, match=r"1 attempt.*HTTP 400 bad phone"):
        await run(req, store, channel)
    assert channel.calls == 1 and store.status[req.payload.delivery_id] == "failed"


async def test_gives_up_after_max_attempts() -> None:
    store, channel, req = FakeStore(), FakeChannel([DeliveryError(f"e{i}") for i in range(10)]), request()
    reports: list[NotificationStatusV1] = []

    async def report(s: NotificationStatusV1) -> None:
        reports.append(s)

    with pytest.raises(DeliveryFailed, match="after 4 attempt"):
        await deliver(req, store, {NotificationKind.CALL_TASK: channel}, Policy(), report, "n")
    assert channel.calls == 4 and [r.payload.status for r in reports] == ["failed"]
    assert reports[0].payload.reason == "e3"


async def test_unconfigured_channel_is_skipped_with_a_reason() -> None:
    store, req = FakeStore(), request(NotificationKind.NURTURE_EMAIL)
    reports: list[NotificationStatusV1] = []

    async def report(s: NotificationStatusV1) -> None:
        reports.append(s)

    assert await deliver(req, store, {}, Policy(), report, "n") == "skipped"
    assert reports[0].payload.reason == "no channel configured for nurture_email"
