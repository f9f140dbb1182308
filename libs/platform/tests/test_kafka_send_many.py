"""KafkaBus.send_many on a real broker: one record batch per partition, yet every message lands
on the partition `send` picks for its key, in the order sent."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

import pytest

from npsloop_platform.bus.kafka import KafkaBus


@pytest.mark.kafka
async def test_send_many_puts_each_key_where_send_does_in_order(kafka_bootstrap: str) -> None:
    bus = KafkaBus(kafka_bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:10]}.", max_batch_size=4096)
    await bus.start()
    await bus.wait_connected(60)
    try:
        await bus.ensure_topics(["many", "single"])
        keys = [f"acme:c-{i % 37}" for i in range(600)]  # 600 x ~90 bytes: several batches per partition
        values = [f'{{"n": {i}, "pad": "{"x" * 60}"}}'.encode() for i in range(600)]
        messages: list = [
            (v, k, [("n", str(i).encode())]) if i % 2 else (v, k)
            for i, (v, k) in enumerate(zip(values, keys, strict=True))
        ]
        futures = await bus.send_many("many", messages, headers=[("shared", b"1")])
        assert 3 <= len(futures) < 600  # batched, and over the 4 KiB batch size more than once per partition
        singles = [await bus.send("single", b"{}", key=k) for k in sorted(set(keys))]
        await asyncio.gather(*futures, *singles)

        async def read(topic: str, n: int) -> list[tuple[int, bytes | None, bytes | None]]:
            reader = bus.consumer([topic], f"reader-{uuid.uuid4().hex[:8]}")
            await reader.start()
            seen: list[tuple[int, bytes | None, bytes | None]] = []
            nonlocal headers_of
            deadline = time.monotonic() + 60
            try:
                while len(seen) < n and time.monotonic() < deadline:
                    got = await reader.getmany(200, 1000)
                    seen += [(m.partition, m.key, m.value) for m in got]
                    headers_of.update({m.value: list(m.headers) for m in got})
            finally:
                await reader.stop()
            return seen

        headers_of: dict[bytes | None, list[tuple[str, bytes]]] = {}
        many, single = await read("many", 600), await read("single", 37)
    finally:
        await bus.stop()
    assert len(many) == 600 and len(single) == 37
    where_send_puts = {key: partition for partition, key, _ in single}
    order: dict[bytes | None, list[int]] = defaultdict(list)
    for partition, key, value in many:
        assert partition == where_send_puts[key]
        order[key].append(int(value.split(b",")[0].split(b":")[1]))  # type: ignore[union-attr]
    assert all(ns == sorted(ns) for ns in order.values()) and len(order) == 37
    assert len({p for p, _, _ in many}) == bus.partitions  # the keys spread over every partition
    for i, value in enumerate(values):  # the shared headers, then a message's own
        own = [("n", str(i).encode())] if i % 2 else []
        assert [h for h in headers_of[value] if h[0] != "traceparent"] == [("shared", b"1"), *own]
