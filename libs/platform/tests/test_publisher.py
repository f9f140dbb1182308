"""The consume loop's Publisher sends a batch's events together on a bus that can (`send_many`),
keeps each message's own headers and order, and re-sends every record of a send that failed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from npsloop_platform.bus import MemoryBus
from npsloop_platform.consumer import Publisher
from npsloop_platform.testing.helpers import feedback_event_json, read_topic
from npsloop_schemas import Topics, parse_event


class _ManyBus(MemoryBus):
    """A MemoryBus with a `send_many` whose first `fail_acks` calls are never acknowledged and
    whose first `fail_calls` calls raise (not connected)."""

    def __init__(self, fail_acks: int = 0, fail_calls: int = 0) -> None:
        super().__init__(partitions=2)
        self.fail_acks, self.fail_calls = fail_acks, fail_calls
        self.calls: list[tuple[str, int]] = []

    async def send_many(self, topic: str, messages: Sequence[tuple[Any, ...]], *, headers: Any = ()) -> list[Any]:
        self.calls.append((topic, len(messages)))
        if self.fail_calls:
            self.fail_calls -= 1
            raise ConnectionError("not connected")
        if self.fail_acks:
            self.fail_acks -= 1
            fut = asyncio.get_running_loop().create_future()
            fut.set_exception(ConnectionError("broker down"))
            return [fut]
        return [await self.send(topic, m[0], key=m[1], headers=[*headers, *m[2]]) for m in messages]


def events(n: int) -> list[Any]:
    return [parse_event(feedback_event_json(i % 11)) for i in range(n)]


async def run(bus: _ManyBus, n: int) -> tuple[Publisher, list[Any], list[Any]]:
    await bus.start()
    publisher = Publisher(bus)
    sent = events(n)
    await publisher.publish_many([(e, f"k{i % 3}", [("n", str(i).encode())]) for i, e in enumerate(sent)])
    assert await publisher.flush(asyncio.Event())
    got = await read_topic(bus, Topics.FEEDBACK_RECEIVED, n, timeout=5)
    await bus.stop()
    return publisher, sent, got


async def test_a_batch_goes_out_in_one_send_many_with_each_message_s_headers_in_key_order() -> None:
    bus = _ManyBus()
    publisher, sent, got = await run(bus, 12)
    assert bus.calls == [(Topics.FEEDBACK_RECEIVED, 12)] and publisher.sent == 12
    by_id = {str(e.event_id): i for i, e in enumerate(sent)}
    for m in got:
        i = by_id[json.loads(m.value)["event_id"]]
        assert m.key == f"k{i % 3}".encode() and ("n", str(i).encode()) in m.headers
    for key in {m.key for m in got}:  # per key, the order they were published in
        order = [by_id[json.loads(m.value)["event_id"]] for m in got if m.key == key]
        assert order == sorted(order)


async def test_an_unacknowledged_send_many_is_sent_again_whole() -> None:
    bus = _ManyBus(fail_acks=1)
    publisher, sent, got = await run(bus, 7)
    assert bus.calls == [(Topics.FEEDBACK_RECEIVED, 7)] * 2 and publisher.sent == 7
    assert sorted(json.loads(m.value)["event_id"] for m in got) == sorted(str(e.event_id) for e in sent)


async def test_a_send_many_that_raises_is_kept_and_sent_by_flush() -> None:
    bus = _ManyBus(fail_calls=2)
    publisher, _, got = await run(bus, 5)
    assert len(bus.calls) == 3 and publisher.sent == 5 and len(got) == 5


async def test_one_event_and_a_bus_without_send_many_use_send() -> None:
    bus = _ManyBus()
    publisher, _, got = await run(bus, 1)
    assert bus.calls == [] and publisher.sent == 1 and len(got) == 1
    plain = MemoryBus(partitions=1)
    await plain.start()
    p = Publisher(plain)
    await p.publish_many([(e, "k", ()) for e in events(3)])
    assert await p.flush(asyncio.Event()) and p.sent == 3
    await plain.stop()
