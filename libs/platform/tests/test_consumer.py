"""The consume loop's policy on the in-memory bus: retry transient errors, dead-letter the rest."""

from __future__ import annotations

import asyncio
from typing import Any

from npsloop_platform.bus import MemoryBus, Message
from npsloop_platform.consumer import EventConsumer, PermanentError, Publisher
from npsloop_platform.testing.helpers import eventually, feedback_event_json
from npsloop_schemas import Event, Topics


def event_bytes(score: int = 5) -> bytes:
    return feedback_event_json(score)


async def run_until(bus: MemoryBus, consumer: EventConsumer, done: object) -> None:
    await consumer.start()
    try:
        await eventually(done, timeout=10)  # type: ignore[arg-type]
    finally:
        await consumer.stop()


async def test_transient_errors_are_retried_until_they_succeed_never_dropped() -> None:
    bus = MemoryBus()
    await bus.start()
    await bus.publish(Topics.FEEDBACK_RECEIVED, event_bytes(), key="k")
    calls: list[int] = []

    async def flaky(event: Event, msg: Message, pub: Publisher) -> None:
        calls.append(1)
        if len(calls) < 8:  # more failures than max_attempts: transient ones do not count
            raise ConnectionError("postgres is down")

    consumer = EventConsumer(
        bus, [Topics.FEEDBACK_RECEIVED], "g", flaky, max_attempts=3, retry_initial_s=0.01, retry_max_s=0.05
    )

    async def handled() -> bool:
        return consumer.stats.handled == 1

    await run_until(bus, consumer, handled)
    assert len(calls) == 8 and consumer.stats.dead_lettered == 0 and consumer.stats.retries == 7
    (committed,) = [offset for (group, _tp), offset in bus._committed.items() if group == "g"]
    assert committed == 1


async def test_a_bug_is_retried_max_attempts_then_dead_lettered_and_the_partition_moves_on() -> None:
    bus = MemoryBus(partitions=1)
    await bus.start()
    await bus.publish(Topics.FEEDBACK_RECEIVED, event_bytes(1), key="k")
    await bus.publish(Topics.FEEDBACK_RECEIVED, event_bytes(2), key="k")
    seen: list[int] = []

    async def handler(event: Event, msg: Message, pub: Publisher) -> None:
        seen.append(event.payload.score)  # type: ignore[union-attr]
        if event.payload.score == 1:  # type: ignore[union-attr]
            raise KeyError("bug")

    consumer = EventConsumer(bus, [Topics.FEEDBACK_RECEIVED], "g", handler, max_attempts=3, retry_initial_s=0.01)

    async def moved_on() -> bool:
        return consumer.stats.handled == 1

    await run_until(bus, consumer, moved_on)
    assert seen == [1, 1, 1, 2]
    dlq = bus.messages(Topics.dlq(Topics.FEEDBACK_RECEIVED, "g"))
    assert len(dlq) == 1 and dlq[0].header("npsloop-dlq-reason") == b"KeyError: 'bug'"


async def test_permanent_error_dead_letters_at_once() -> None:
    bus = MemoryBus()
    await bus.start()
    await bus.publish(Topics.FEEDBACK_RECEIVED, event_bytes(), key="k")
    calls: list[int] = []

    async def handler(event: Event, msg: Message, pub: Publisher) -> None:
        calls.append(1)
        raise PermanentError("tenant unknown")

    consumer = EventConsumer(bus, [Topics.FEEDBACK_RECEIVED], "g", handler)

    async def dead() -> bool:
        return consumer.stats.dead_lettered == 1

    await run_until(bus, consumer, dead)
    assert calls == [1]
    (m,) = bus.messages("feedback.received.v1.dlq.g")
    assert m.header("npsloop-dlq-reason") == b"PermanentError: tenant unknown"


async def test_uncommitted_messages_are_redelivered_to_the_next_consumer() -> None:
    bus = MemoryBus(partitions=1)
    await bus.start()
    for _ in range(3):
        await bus.publish(Topics.FEEDBACK_RECEIVED, event_bytes(), key="k")
    raw = bus.consumer([Topics.FEEDBACK_RECEIVED], "g")
    await raw.start()
    first = await raw.getmany(0, 10)
    await raw.commit({first[0].tp: first[0].offset + 1})  # only the first is done
    await raw.stop()
    again = bus.consumer([Topics.FEEDBACK_RECEIVED], "g")
    await again.start()
    rest = await again.getmany(0, 10)
    assert [m.offset for m in first] == [0, 1, 2] and [m.offset for m in rest] == [1, 2]
    other_group = bus.consumer([Topics.FEEDBACK_RECEIVED], "other")
    await other_group.start()
    assert len(await other_group.getmany(0, 10)) == 3


class _FailingSendBus(MemoryBus):
    """A bus whose sends to one topic are never acknowledged (as when Kafka is down)."""

    async def send(self, topic: str, value: bytes, *, key: str | bytes | None = None, headers: Any = ()) -> Any:
        if topic == Topics.FEEDBACK_CLASSIFIED:
            fut = asyncio.get_running_loop().create_future()
            fut.set_exception(ConnectionError("broker down"))
            return fut
        return await super().send(topic, value, key=key, headers=headers)


async def test_stopping_while_publishes_fail_does_not_commit_and_does_not_hang() -> None:
    bus = _FailingSendBus(partitions=1)
    await bus.start()
    await bus.publish(Topics.FEEDBACK_RECEIVED, event_bytes(), key="k")

    async def forward(event: Event, msg: Message, pub: Publisher) -> None:
        await pub.publish_raw(Topics.FEEDBACK_CLASSIFIED, b"{}", "k")

    consumer = EventConsumer(bus, [Topics.FEEDBACK_RECEIVED], "g", forward)
    await consumer.start()

    async def handled() -> bool:
        return consumer.stats.handled == 1

    await eventually(handled, timeout=10)
    await asyncio.wait_for(consumer.stop(), 5)  # flush gives up once stopping is set
    assert not any(group == "g" for group, _ in bus._committed)  # redelivered later, never lost
