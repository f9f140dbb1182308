"""Issue 13 regression: a receiver outage is retried over a time window, not dropped after a few
attempts. In the full chaos run a 30 s SMTP refusal failed 64 emails and a 40 s CRM outage
3,038 webhooks, each after five attempts in 8 s. Now the delivery is left `retrying` in
PostgreSQL, the batch moves on, and the redelivery loop retries it (same delivery id) until it
is sent or `retry_window_s` is over. Injected clock: the loop is driven by `run_once`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from npsloop_notifier.delivery import retry_at
from npsloop_notifier.retry import Redelivery
from npsloop_platform.bus import MemoryBus
from npsloop_platform.testing.helpers import eventually
from npsloop_platform.testing.servers import SmtpSink, free_port
from npsloop_schemas import derive_id

from .conftest import Receiver, notification, started_service, stop_service
from .test_webhooks import subscribe


class Policy:
    max_attempts = 5
    backoff_initial_s = 0.5
    backoff_max_s = 30.0
    retry_window_s = 3600.0
    retry_backoff_max_s = 600.0


def test_the_schedule_backs_off_exponentially_up_to_its_cap_and_ends_with_the_window() -> None:
    began = datetime(2026, 12, 1, tzinfo=UTC)
    waits = []
    for failures in range(5, 16):
        at = retry_at(Policy(), began, began, failures)
        assert at is not None
        waits.append((at - began).total_seconds())
    assert 2 <= waits[0] <= 2.2 and 4 <= waits[1] <= 4.4 and 8 <= waits[2] <= 8.8
    assert all(600 <= w <= 660 for w in waits[-2:])  # capped at retry_backoff_max_s (+ jitter)
    assert retry_at(Policy(), began, began + timedelta(seconds=3599), 9) is None  # past the window: failed
    zero = Policy()
    zero.retry_window_s = 0  # 0: the old behaviour, failed after max_attempts
    assert retry_at(zero, began, began, 5) is None


async def row(parts: Any, delivery_id: object) -> Any:
    async with parts.db.engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT status, attempts, next_attempt_at, body, last_error FROM notifier.deliveries "
                    "WHERE delivery_id = :id"
                ),
                {"id": delivery_id},
            )
        ).first()


def loop(parts: Any) -> Redelivery:
    found: Redelivery = parts.extras["notifier.redelivery"]
    return found


async def test_a_crm_outage_is_retried_in_the_background_until_sent_with_the_same_webhook_id(
    database_url: str, receiver: Receiver
) -> None:
    bus = MemoryBus(topic_prefix=f"t{uuid.uuid4().hex[:8]}.")
    await bus.start()
    service, parts = await started_service(
        bus, database_url, max_attempts=2, retry_window_s=3600, retry_poll_s=60, webhook_disable_after=2
    )
    try:
        sub = await subscribe(service, receiver)
        receiver.script = [(500, {}, 0.0), (503, {}, 0.0)]  # the in-batch attempts both fail
        event = await service.publish_case_opened(customer="acme:c-1")
        delivery_id = derive_id(f"webhook:{sub['id']}", event.event_id)

        async def retrying() -> bool:
            r = await row(parts, delivery_id)
            return r is not None and r.status == "retrying"

        await eventually(retrying, timeout=30, what="the delivery left retrying")
        first = await row(parts, delivery_id)
        assert first.attempts == 2 and first.next_attempt_at > service.clock()
        # The consumer moved on: the next event (another customer) is delivered meanwhile.
        await service.publish_case_opened(customer="acme:c-2")
        await eventually(lambda: _accepted(receiver, 1), timeout=30, what="the next event")
        assert await loop(parts).run_once() == 0  # not due yet

        receiver.script = [(500, {}, 0.0)] * 3  # still down at the next three retries
        for _ in range(3):
            service.clock.now = (await row(parts, delivery_id)).next_attempt_at + timedelta(seconds=1)
            assert await loop(parts).run_once() == 1
            assert (await row(parts, delivery_id)).status == "retrying"
        service.clock.now = (await row(parts, delivery_id)).next_attempt_at + timedelta(seconds=1)
        assert await loop(parts).run_once() == 1  # the CRM is back
        done = await row(parts, delivery_id)
        assert done.status == "sent" and done.attempts == 6 and done.next_attempt_at is None
        posts = [r.headers["webhook-id"] for r in receiver.received if r.headers.get("webhook-id") == str(delivery_id)]
        assert posts == [str(delivery_id)] * 6  # one id throughout: the receiver dedupes
        assert len([r for r in receiver.accepted() if r.headers["webhook-id"] == str(delivery_id)]) == 1
        seen = (await service.http.get(f"/v1/webhook-subscriptions/{sub['id']}")).json()
        assert seen["status"] == "active"  # an outage retried never disables the endpoint
        log = (await service.http.get(f"/v1/deliveries/{delivery_id}")).json()
        assert [a["attempt"] for a in log["log"]] == [1, 2, 3, 4, 5, 6]
    finally:
        await stop_service(service, parts)
        await bus.stop()


async def test_a_webhook_still_failing_at_the_end_of_the_window_fails_and_can_be_replayed(
    database_url: str, receiver: Receiver
) -> None:
    bus = MemoryBus(topic_prefix=f"t{uuid.uuid4().hex[:8]}.")
    await bus.start()
    service, parts = await started_service(bus, database_url, max_attempts=1, retry_window_s=60, retry_poll_s=60)
    try:
        sub = await subscribe(service, receiver)
        receiver.script = [(500, {}, 0.0), (500, {}, 0.0)]
        event = await service.publish_case_opened()
        delivery_id = derive_id(f"webhook:{sub['id']}", event.event_id)

        async def retrying() -> bool:
            r = await row(parts, delivery_id)
            return r is not None and r.status == "retrying"

        await eventually(retrying, timeout=30, what="the delivery left retrying")
        service.clock.advance(seconds=120)  # past the window
        assert await loop(parts).run_once() == 1
        failed = await row(parts, delivery_id)
        assert failed.status == "failed" and "end of the retry window" in failed.last_error
        seen = (await service.http.get(f"/v1/webhook-subscriptions/{sub['id']}")).json()
        assert seen["consecutive_failures"] == 1  # a delivery failed for good counts
        replayed = (await service.http.post(f"/v1/deliveries/{delivery_id}/replay")).json()
        assert replayed["status"] == "sent", replayed
        assert len(receiver.accepted()) == 1
    finally:
        await stop_service(service, parts)
        await bus.stop()


async def test_an_smtp_refusal_is_retried_until_the_server_is_back_and_the_email_goes_once(
    database_url: str,
) -> None:
    from aiosmtpd.controller import Controller

    bus = MemoryBus(topic_prefix=f"t{uuid.uuid4().hex[:8]}.")
    await bus.start()
    port = free_port()  # nobody listens yet: connection refused
    service, parts = await started_service(
        bus, database_url, smtp_port=port, max_attempts=2, retry_window_s=3600, retry_poll_s=60
    )
    controller = None
    try:
        req = notification()
        await service.request(req)
        delivery_id = req.payload.delivery_id

        async def retrying() -> bool:
            r = await row(parts, delivery_id)
            return r is not None and r.status == "retrying"

        await eventually(retrying, timeout=30, what="the email left retrying")
        held = await row(parts, delivery_id)
        assert held.attempts == 2 and held.body is not None  # the request, kept to retry it
        service.clock.now = held.next_attempt_at + timedelta(seconds=1)
        assert await loop(parts).run_once() == 1  # still refused
        assert (await row(parts, delivery_id)).status == "retrying"

        sink = SmtpSink("127.0.0.1", port)
        controller = Controller(sink, hostname="127.0.0.1", port=port)
        controller.start()
        service.clock.now = (await row(parts, delivery_id)).next_attempt_at + timedelta(seconds=1)
        assert await loop(parts).run_once() == 1
        sent = await row(parts, delivery_id)
        assert sent.status == "sent" and sent.attempts == 4 and sent.body is None  # contact details dropped
        assert len(sink.messages) == 1
        assert await loop(parts).run_once() == 0  # nothing due: never sent twice
        assert len(sink.messages) == 1
    finally:
        if controller is not None:
            controller.stop()
        await stop_service(service, parts)
        await bus.stop()


async def _accepted(receiver: Receiver, n: int) -> bool:
    return len(receiver.accepted()) >= n


async def test_an_email_still_failing_at_the_end_of_the_window_is_reported_failed_and_dead_lettered() -> None:
    from npsloop_notifier.channels import DeliveryError
    from npsloop_notifier.handlers import Notifier
    from npsloop_notifier.ports import Begun, Outcome
    from npsloop_schemas import DeliveryStatus, NotificationKind

    finished: dict[object, Outcome] = {}

    class Store:
        async def begin(self, requests: Any, gates: Any, now: Any) -> dict[Any, Begun]:
            return {}

        async def finish(self, request: Any, outcome: Outcome, now: Any, **kw: Any) -> None:
            finished[request.payload.delivery_id] = outcome

    class Down:
        calls = 0

        async def deliver(self, request: Any) -> None:
            self.calls += 1
            raise DeliveryError("451 try again later")

    class Short(Policy):
        max_attempts = 2
        retry_window_s = 60.0

    async def no_wait(_: float) -> None:
        return None

    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    channel = Down()
    notifier = Notifier(Store(), {NotificationKind.THANK_YOU_EMAIL: channel}, Short(), clock=lambda: now, sleep=no_wait)
    req = notification()
    (first,) = await notifier.deliver_batch([(req, "acme:c-1")])
    assert first.report is None and first.failure is None  # retrying: no status yet, not dead-lettered
    assert finished[req.payload.delivery_id].status == "retrying" and channel.calls == 2
    (last,) = await notifier.redeliver([(req, 2, now - timedelta(seconds=120))])
    assert last.report is not None and last.report.payload.status is DeliveryStatus.FAILED
    assert last.report.payload.attempts == 3 and last.failure is not None
    assert "end of the retry window" in str(last.failure)
    assert [a.number for a in finished[req.payload.delivery_id].attempts] == [3]


async def test_a_final_status_is_published_before_the_row_is_final_so_an_outage_never_loses_it() -> None:
    """A status event that cannot be published leaves the row as it was (claimed, due again when
    its lease ends), rather than final with its status lost; a Kafka outage in the redelivery loop
    is retried until the status is out, and only then is the row marked final."""
    import asyncio

    from npsloop_notifier.handlers import Notifier
    from npsloop_notifier.ports import Begun, Outcome
    from npsloop_schemas import DeliveryStatus, NotificationKind

    order: list[str] = []

    class Store:
        async def begin(self, requests: Any, gates: Any, now: Any) -> dict[Any, Begun]:
            return {}

        async def finish(self, request: Any, outcome: Outcome, now: Any, **kw: Any) -> None:
            order.append(f"finish {outcome.status}")

        async def claim_due(self, now: Any, *, lease_s: float, limit: int) -> list[Any]:
            return claimed.pop() if claimed else []

    class Up:
        async def deliver(self, request: Any) -> None:
            order.append("sent")

    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    notifier = Notifier(Store(), {NotificationKind.THANK_YOU_EMAIL: Up()}, Policy(), clock=lambda: now)
    req = notification()

    async def kafka_down(request: Any, delivered: Any) -> None:
        raise ConnectionError("broker gone")

    try:
        await notifier.redeliver([(req, 5, now)], kafka_down)
    except ConnectionError:
        pass
    else:
        raise AssertionError("the report's failure must reach the redelivery loop")
    assert order == ["sent"]  # not marked final: the lease brings it back, the status is not lost

    class FlakyBus:
        def __init__(self) -> None:
            self.published: list[tuple[str, bytes]] = []
            self.failures = 2

        async def publish(self, topic: str, value: bytes, **kw: Any) -> None:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("broker restarting")
            order.append("status published")
            self.published.append((topic, value))

    class Hooks:
        store = None

        async def redeliver(self, jobs: Any) -> None:
            raise AssertionError("no webhooks due")

    class HookStore:
        async def claim_due(self, now: Any, *, lease_s: float, limit: int) -> list[Any]:
            return []

    hooks = Hooks()
    hooks.store = HookStore()  # type: ignore[assignment]
    bus = FlakyBus()
    claimed = [[(req, 5, now)]]
    order.clear()
    redelivery = Redelivery(notifier, hooks, bus, group_id="notifier")  # type: ignore[arg-type]
    assert await asyncio.wait_for(redelivery.run_once(), 30) == 1
    assert order == ["sent", "status published", "finish sent"]  # retried through the outage, then final
    ((topic, value),) = bus.published
    assert topic.endswith("notification.status.v1") or "status" in topic
    assert b'"status":"sent"' in value.replace(b" ", b"") and DeliveryStatus.SENT.value == "sent"
