"""The consume loop's policy, on the in-memory bus and on real Kafka: batches, one commit per
poll, transient errors retried, faults bisected down to the one message that is dead-lettered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from npsloop_platform.bus import Bus, MemoryBus
from npsloop_platform.consumer import EventConsumer, PermanentError
from npsloop_platform.testing.helpers import committed_total, eventually, feedback_event_json, read_topic
from npsloop_platform.uow import Received, UnitOfWork
from npsloop_schemas import FeedbackReceivedV1, Topics

Items = Sequence[Received[FeedbackReceivedV1]]


async def put(bus: Bus, scores: Sequence[int], key: str = "k") -> None:
    for score in scores:
        await bus.publish(Topics.FEEDBACK_RECEIVED, feedback_event_json(score), key=key)


def consumer(bus: Bus, handle: Callable[[Items, UnitOfWork], Any], **kw: Any) -> EventConsumer:
    opts: dict[str, Any] = {"retry_initial_s": 0.01, "retry_max_s": 0.05, **kw}
    return EventConsumer(bus, "g", {FeedbackReceivedV1: handle}, **opts)


async def run_until(c: EventConsumer, done: Callable[[], bool], timeout: float = 30) -> None:
    await c.start()
    try:

        async def check() -> bool:
            return done()

        await eventually(check, timeout=timeout)
    finally:
        await c.stop()


async def test_a_poll_is_handled_as_one_batch_and_committed_once(bus: Bus) -> None:
    await put(bus, list(range(11)) * 3)  # 33 on one key: one partition, in order
    batches: list[list[int]] = []

    async def handle(items: Items, uow: UnitOfWork) -> None:
        batches.append([i.event.payload.score for i in items])

    c = consumer(bus, handle, max_batch=500)
    await run_until(c, lambda: c.stats.handled == 33)
    assert [s for b in batches for s in b] == list(range(11)) * 3  # per-key order kept
    assert len(batches) <= 3 and c.stats.batches == len(batches)  # Kafka may split the first fetch
    assert await committed_total(bus, "g", Topics.FEEDBACK_RECEIVED) == 33


async def test_transient_errors_are_retried_until_they_succeed_never_dropped(bus: Bus) -> None:
    await put(bus, [5])
    calls: list[int] = []

    async def flaky(items: Items, uow: UnitOfWork) -> None:
        calls.append(len(items))
        if len(calls) < 8:  # more failures than max_attempts: transient ones do not count
            raise ConnectionError("postgres is down")

    c = consumer(bus, flaky, max_attempts=3)
    await run_until(c, lambda: c.stats.handled == 1)
    assert len(calls) == 8 and c.stats.dead_lettered == 0 and c.stats.retries == 7
    assert await committed_total(bus, "g", Topics.FEEDBACK_RECEIVED) == 1


async def test_a_poison_message_mid_batch_is_dead_lettered_alone_and_the_rest_handled_once(bus: Bus) -> None:
    # 12 on one key; the 7th (score 6) is a bug the handler trips over every time.
    await put(bus, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0])
    committed: list[int] = []  # what a database would hold: only units of work that committed

    async def handle(items: Items, uow: UnitOfWork) -> None:
        scores = [i.event.payload.score for i in items]
        if 6 in scores:
            raise KeyError("bug on score 6")
        uow.after_commit(lambda: committed.extend(scores))

    c = consumer(bus, handle, max_attempts=2, max_batch=500)
    await run_until(c, lambda: c.stats.handled == 11 and c.stats.dead_lettered == 1)
    assert committed == [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 0]  # exactly once, in order
    assert c.stats.bisections >= 1
    dead = await read_topic(bus, Topics.dlq(Topics.FEEDBACK_RECEIVED, "g"), 1)
    assert len(dead) == 1 and dead[0].header("npsloop-dlq-reason") == b"KeyError: 'bug on score 6'"
    assert await committed_total(bus, "g", Topics.FEEDBACK_RECEIVED) == 12


async def test_undecodable_and_invalid_messages_go_to_the_dlq_and_the_batch_goes_on(bus: Bus) -> None:
    await bus.publish(Topics.FEEDBACK_RECEIVED, b"{not json", key="k")
    await put(bus, [9])
    await bus.publish(Topics.FEEDBACK_RECEIVED, feedback_event_json(11), key="k")  # score out of range
    seen: list[int] = []

    async def handle(items: Items, uow: UnitOfWork) -> None:
        seen.extend(i.event.payload.score for i in items)

    c = consumer(bus, handle)
    await run_until(c, lambda: c.stats.dead_lettered == 2 and c.stats.handled == 1)
    assert seen == [9]
    dead = await read_topic(bus, "feedback.received.v1.dlq.g", 2)
    reasons = [(m.header("npsloop-dlq-reason") or b"").decode() for m in dead]
    assert any("Invalid JSON" in r for r in reasons)
    assert any("payload.score: Input should be less than or equal to 10" in r for r in reasons)


async def test_permanent_error_dead_letters_at_once(bus: Bus) -> None:
    await put(bus, [5])
    calls: list[int] = []

    async def handle(items: Items, uow: UnitOfWork) -> None:
        calls.append(1)
        raise PermanentError("tenant unknown")

    c = consumer(bus, handle)
    await run_until(c, lambda: c.stats.dead_lettered == 1)
    assert calls == [1]
    (m,) = await read_topic(bus, "feedback.received.v1.dlq.g", 1)
    assert m.header("npsloop-dlq-reason") == b"PermanentError: tenant unknown"


async def test_a_handler_can_refuse_one_item_and_keep_the_rest(bus: Bus) -> None:
    await put(bus, [1, 2, 3])
    kept: list[int] = []

    async def handle(items: Items, uow: UnitOfWork) -> None:
        for i in items:
            if i.event.payload.score == 2:
                uow.dead_letter(i, PermanentError("no channel"))
            else:
                kept.append(i.event.payload.score)

    c = consumer(bus, handle)
    await run_until(c, lambda: c.stats.handled == 2 and c.stats.dead_lettered == 1)
    assert kept == [1, 3]


async def test_uncommitted_messages_are_redelivered_to_the_next_consumer() -> None:
    bus = MemoryBus(partitions=1)
    await bus.start()
    await put(bus, [1, 2, 3])
    raw = bus.consumer([Topics.FEEDBACK_RECEIVED], "g")
    await raw.start()
    first = await raw.getmany(0, 10)
    await raw.commit({first[0].tp: first[0].offset + 1})  # only the first is done
    await raw.stop()
    again = bus.consumer([Topics.FEEDBACK_RECEIVED], "g")
    await again.start()
    rest = await again.getmany(0, 10)
    assert [m.offset for m in first] == [0, 1, 2] and [m.offset for m in rest] == [1, 2]
    assert await committed_total(bus, "g", Topics.FEEDBACK_RECEIVED) == 1


async def test_a_consumer_stuck_on_one_batch_turns_not_ready(bus: Bus) -> None:
    await put(bus, [5])
    now = [1000.0]
    release = asyncio.Event()
    entered = asyncio.Event()

    async def hang(items: Items, uow: UnitOfWork) -> None:
        entered.set()
        await release.wait()

    c = consumer(bus, hang, stuck_after_s=30, clock=lambda: now[0])
    await c.start()
    try:
        await asyncio.wait_for(entered.wait(), 30)
        assert await c.ready()
        now[0] += 31  # an injected clock: no real waiting
        assert not await c.ready() and c.stuck_for() == 31
        release.set()

        async def recovered() -> bool:
            return c.stats.handled == 1 and await c.ready()

        await eventually(recovered, timeout=10)
    finally:
        release.set()
        await c.stop()


async def test_a_local_file_error_is_a_fault_not_an_outage(bus: Bus) -> None:
    await put(bus, [5])

    async def handle(items: Items, uow: UnitOfWork) -> None:
        raise FileNotFoundError(2, "No such file or directory", "/var/mail/tmp")

    c = consumer(bus, handle, max_attempts=3)
    await run_until(c, lambda: c.stats.dead_lettered == 1)
    assert c.stats.retries == 2  # three attempts in all, then the DLQ: not retried forever


class _FailingSendBus(MemoryBus):
    """A bus whose sends are never acknowledged once `down` (as when Kafka goes away)."""

    down = False

    async def send(self, topic: str, value: bytes, *, key: str | bytes | None = None, headers: Any = ()) -> Any:
        if self.down:
            fut = asyncio.get_running_loop().create_future()
            fut.set_exception(ConnectionError("broker down"))
            return fut
        return await super().send(topic, value, key=key, headers=headers)


@pytest.mark.parametrize("n", [1, 50])
async def test_stopping_while_publishes_fail_does_not_commit_and_does_not_hang(n: int) -> None:
    bus = _FailingSendBus(partitions=1)
    await bus.start()
    await put(bus, [5] * n)
    bus.down = True

    async def forward(items: Items, uow: UnitOfWork) -> None:
        uow.publish_all([(i.event, i.key) for i in items])

    c = consumer(bus, forward)
    await c.start()

    async def handled() -> bool:
        return c.stats.handled >= n

    await eventually(handled, timeout=10)
    await asyncio.wait_for(c.stop(), 5)  # flush gives up once stopping is set
    assert await committed_total(bus, "g", Topics.FEEDBACK_RECEIVED) == 0  # redelivered later, never lost


async def test_dead_letter_log_lines_carry_ids_and_never_the_comment(caplog: pytest.LogCaptureFixture) -> None:
    bus = MemoryBus(partitions=1)
    await bus.start()
    secret = "my neighbour Ann Smith was rude"
    await bus.publish(Topics.FEEDBACK_RECEIVED, feedback_event_json(11, comment=secret), key="k")  # invalid
    await bus.publish(Topics.FEEDBACK_RECEIVED, feedback_event_json(3, comment=secret), key="k")

    async def refuse(items: Items, uow: UnitOfWork) -> None:
        raise PermanentError("no tenant configured")

    c = consumer(bus, refuse)
    with caplog.at_level("WARNING"):
        await run_until(c, lambda: c.stats.dead_lettered == 2)
    assert secret not in caplog.text
    (refused,) = [r for r in caplog.records if "no tenant configured" in r.getMessage()]
    assert getattr(refused, "event_id", None) and getattr(refused, "correlation_id", None)


async def test_a_stop_wakes_a_waiting_poll_and_the_next_consumer_loses_and_repeats_nothing(bus: Bus) -> None:
    await put(bus, [1, 2, 3])
    seen: list[int] = []

    async def handle(items: Items, uow: UnitOfWork) -> None:
        seen.extend(i.event.payload.score for i in items)

    c = consumer(bus, handle, poll_ms=120_000)  # a poll waits up to two minutes for records
    await c.start()

    async def three() -> bool:
        return len(seen) == 3

    await eventually(three, timeout=30, what="the first three handled")
    await asyncio.sleep(0.2)  # in the next poll, which has nothing to wait for but a stop
    await asyncio.wait_for(c.stop(), 20)  # not the poll's two minutes
    assert not c.running()
    await put(bus, [4])
    await run_until(consumer(bus, handle), lambda: len(seen) >= 4)
    assert seen == [1, 2, 3, 4]
    assert await committed_total(bus, "g", Topics.FEEDBACK_RECEIVED) == 4
