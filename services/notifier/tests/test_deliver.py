"""Delivery logic against fakes: dedupe before any call, retries with backoff, permanent failures,
and batches delivered concurrently across customers but in order within one."""

import asyncio
import mailbox
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from npsloop_notifier.channels import DeliveryError, MaildirChannel
from npsloop_notifier.handlers import Delivered, Notifier, status_event
from npsloop_notifier.links import Links
from npsloop_notifier.ports import Begun, Gate, Outcome
from npsloop_notifier.templates import Templates
from npsloop_schemas import (
    Contact,
    DeliveryStatus,
    NotificationKind,
    NotificationRequestedPayloadV1,
    NotificationRequestedV1,
)


@dataclass
class Policy:
    max_attempts: int = 4
    backoff_initial_s: float = 0.001
    backoff_max_s: float = 0.002


class FakeStore:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Begun] = {}
        self.outcomes: dict[uuid.UUID, Outcome] = {}
        self.round_trips = 0

    async def begin(
        self, requests: Sequence[NotificationRequestedV1], gates: Sequence[Gate], now: object
    ) -> dict[uuid.UUID, Begun]:
        self.round_trips += 1
        before = {
            r.payload.delivery_id: self.rows[r.payload.delivery_id]
            for r in requests
            if r.payload.delivery_id in self.rows
        }
        for r in requests:
            self.rows.setdefault(r.payload.delivery_id, Begun(existed=True))
        return before

    async def finish(
        self, request: NotificationRequestedV1, outcome: Outcome, now: object, capped: bool = False
    ) -> None:
        self.round_trips += 1
        delivery_id = request.payload.delivery_id
        self.rows[delivery_id] = Begun(outcome.status, len(outcome.attempts), outcome.error, existed=True)
        self.outcomes[delivery_id] = outcome


class FakeChannel:
    def __init__(self, failures: list[DeliveryError] | None = None, delay_s: float = 0.0) -> None:
        self.failures, self.calls, self.delay_s = failures or [], 0, delay_s
        self.in_flight = self.most_in_flight = 0
        self.order: list[str] = []

    async def deliver(self, request: NotificationRequestedV1) -> None:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s if request.payload.score == 0 else 0.001)
            self.order.append(f"{request.payload.customer_key}/{request.payload.score}")
            if self.failures:
                raise self.failures.pop(0)
        finally:
            self.in_flight -= 1


def request(
    kind: NotificationKind = NotificationKind.CALL_TASK, customer: str = "acme:c", score: int = 2
) -> NotificationRequestedV1:
    from datetime import UTC, datetime

    return NotificationRequestedV1(
        event_id=uuid.uuid4(),
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        tenant_id="acme",
        source="a",
        correlation_id=uuid.uuid4(),
        payload=NotificationRequestedPayloadV1(
            delivery_id=uuid.uuid4(),
            kind=kind,
            customer_key=customer,
            recipient=Contact(phone="+4915112345678", email="ann@example.com"),
            feedback_event_id=uuid.uuid4(),
            score=score,
        ),
    )


def notifier(store: FakeStore, channel: FakeChannel | None, max_in_flight: int = 8) -> Notifier:
    channels = {NotificationKind.CALL_TASK: channel} if channel else {}
    return Notifier(store, channels, Policy(), "notifier", max_in_flight)


async def deliver_batch(reqs, store, channels, policy, source, max_in_flight):  # type: ignore[no-untyped-def]
    return await Notifier(store, channels, policy, source, max_in_flight).deliver_batch(reqs)


async def one(req: NotificationRequestedV1, store: FakeStore, channel: FakeChannel) -> Delivered:
    (result,) = await notifier(store, channel).deliver_batch([(req, req.payload.customer_key)])
    return result


async def test_transient_failures_are_retried_and_every_attempt_is_logged() -> None:
    store, channel, req = FakeStore(), FakeChannel([DeliveryError("503"), DeliveryError("timeout")]), request()
    result = await one(req, store, channel)
    assert result.failure is None and channel.calls == 3
    outcome = store.outcomes[req.payload.delivery_id]
    assert [(a.number, a.error) for a in outcome.attempts] == [(1, "503"), (2, "timeout"), (3, None)]
    assert (result.report.payload.status, result.report.payload.attempts) == ("sent", 3)
    assert store.round_trips == 2  # begin and finish


async def test_a_finished_delivery_is_never_repeated_but_reported_again_with_the_same_id() -> None:
    store, channel, req = FakeStore(), FakeChannel(), request()
    first = await one(req, store, channel)
    again = await one(req, store, channel)
    assert channel.calls == 1
    assert again.report is not None and again.report.event_id == first.report.event_id
    assert again.report.payload.status == "sent"


async def test_an_in_doubt_delivery_is_made_again() -> None:
    store, channel, req = FakeStore(), FakeChannel(), request()
    store.rows[req.payload.delivery_id] = Begun("pending", 0, None, existed=True)  # a crash mid-call
    result = await one(req, store, channel)
    assert channel.calls == 1 and result.report.payload.status == "sent"


async def test_permanent_failure_is_not_retried_and_is_dead_lettered() -> None:
    store, channel, req = FakeStore(), FakeChannel([DeliveryError("HTTP 400 bad phone", permanent=True)]), request()
    result = await one(req, store, channel)
    assert result.failure is not None and "1 attempt(s): HTTP 400 bad phone" in str(result.failure)
    assert channel.calls == 1 and store.rows[req.payload.delivery_id].status == "failed"
    assert result.report.payload.status == "failed"


async def test_gives_up_after_max_attempts() -> None:
    store, channel, req = FakeStore(), FakeChannel([DeliveryError(f"e{i}") for i in range(10)]), request()
    result = await one(req, store, channel)
    assert result.failure is not None and "after 4 attempt" in str(result.failure)
    assert channel.calls == 4 and result.report.payload.reason == "e3"


async def test_unconfigured_channel_is_skipped_with_a_reason() -> None:
    store, req = FakeStore(), request(NotificationKind.NURTURE_EMAIL)
    result = await notifier(store, None).deliver(req, Begun())
    assert result.report.payload.status == DeliveryStatus.SKIPPED
    assert result.report.payload.reason == "no channel configured for nurture_email"


async def test_a_batch_runs_customers_concurrently_but_never_more_than_max_in_flight() -> None:
    store, channel = FakeStore(), FakeChannel()
    reqs = [request(customer=f"acme:c-{i}") for i in range(40)]
    results = await deliver_batch(
        [(r, r.payload.customer_key) for r in reqs], store, {NotificationKind.CALL_TASK: channel}, Policy(), "n", 5
    )
    assert channel.calls == 40 and all(r.report.payload.status == "sent" for r in results)
    assert channel.most_in_flight == 5
    assert [r.report.payload.delivery_id for r in results] == [r.payload.delivery_id for r in reqs]  # input order


async def test_one_customers_requests_stay_in_order_even_when_the_first_is_slow() -> None:
    store, channel = FakeStore(), FakeChannel(delay_s=0.05)
    reqs = [
        request(customer="acme:a", score=0),
        request(customer="acme:b", score=1),
        request(customer="acme:a", score=5),
    ]
    await deliver_batch(
        [(r, r.payload.customer_key) for r in reqs], store, {NotificationKind.CALL_TASK: channel}, Policy(), "n", 8
    )
    assert channel.order.index("acme:a/0") < channel.order.index("acme:a/5")
    assert channel.order[0] == "acme:b/1"  # the other customer did not wait for the slow one


async def test_the_same_request_twice_in_one_batch_is_delivered_once() -> None:
    store, channel, req = FakeStore(), FakeChannel(), request()
    results = await deliver_batch(
        [(req, "k"), (req, "k")], store, {NotificationKind.CALL_TASK: channel}, Policy(), "n", 8
    )
    assert channel.calls == 1 and results[0].report is not None and results[1].report is None


async def test_one_failure_does_not_touch_the_rest_of_the_batch() -> None:
    store = FakeStore()
    channel = FakeChannel([DeliveryError("HTTP 400", permanent=True)])
    reqs = [request(customer=f"acme:c-{i}") for i in range(3)]
    results = await deliver_batch(
        [(r, r.payload.customer_key) for r in reqs], store, {NotificationKind.CALL_TASK: channel}, Policy(), "n", 1
    )
    assert [r.failure is not None for r in results] == [True, False, False]
    assert [r.report.payload.status for r in results] == ["failed", "sent", "sent"]


def test_status_ids_derive_from_the_delivery() -> None:
    req = request()
    assert (
        status_event(req, DeliveryStatus.SENT, 1, None, "a").event_id
        == status_event(req, DeliveryStatus.SENT, 2, None, "b").event_id
    )
    assert (
        status_event(req, DeliveryStatus.SENT, 1, None, "a").event_id
        != status_event(req, DeliveryStatus.FAILED, 1, None, "a").event_id
    )


async def test_maildir_works_in_an_existing_empty_folder() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "mail"
        folder.mkdir()  # as a newcomer would: NPSLOOP_MAIL_DIR created, empty
        templates = Templates(Links("http://127.0.0.1:8000", b"k", 30))
        channel = MaildirChannel(folder, "npsloop <noreply@npsloop.local>", templates)
        req = request(NotificationKind.THANK_YOU_EMAIL, score=10)
        await channel.deliver(req)
        (msg,) = list(mailbox.Maildir(folder, create=False))
        assert msg["X-Npsloop-Delivery-Id"] == str(req.payload.delivery_id)
        text, html = (part.get_payload(decode=True).decode() for part in msg.get_payload())
        assert "10/10" in text and "<b>10/10</b>" in html
        assert msg["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/v1/unsubscribe?token=")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_backoff_grows_exponentially_with_bounded_jitter_up_to_the_max() -> None:
    from npsloop_notifier.delivery import backoff_s

    policy = Policy(max_attempts=10, backoff_initial_s=0.5, backoff_max_s=4.0)
    waits = [[backoff_s(policy, n) for _ in range(200)] for n in (1, 2, 3, 4, 5, 6)]
    for n, (low, high) in enumerate([(0.5, 1.0), (1.0, 1.5), (2.0, 2.5), (4.0, 4.5), (4.0, 4.5), (4.0, 4.5)]):
        assert all(low <= w <= high for w in waits[n]), (n, min(waits[n]), max(waits[n]))
    assert len({round(w, 6) for w in waits[0]}) > 100  # jittered, not one fixed value


async def test_a_retry_after_beyond_the_limit_fails_now_and_says_so() -> None:
    from npsloop_notifier.delivery import attempt

    calls: list[int] = []

    async def call() -> int:
        calls.append(1)
        raise DeliveryError("HTTP 429", retry_after_s=3600, status_code=429)

    policy = Policy()
    policy.retry_after_max_s = 120.0  # type: ignore[attr-defined]
    outcome = await attempt(call, policy)
    assert (
        outcome.status == "failed" and len(calls) == 1 and "Retry-After 3600 s is over the 120 s" in str(outcome.error)
    )
