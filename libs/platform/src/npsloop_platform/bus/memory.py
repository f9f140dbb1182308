"""An in-memory bus: partitioned logs, consumer groups and committed offsets in one process.

Faithful to what the services rely on: per-key ordering (crc32 partitioner), at-least-once
redelivery of uncommitted messages to a group's next consumer, and independent consumer groups.
One active consumer per group at a time.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Sequence

from .. import tracing
from .base import Headers, Message, TopicPartition, as_bytes


class MemoryBus:
    name = "memory"

    def __init__(self, partitions: int = 3, topic_prefix: str = "") -> None:
        self.partitions = partitions
        self.topic_prefix = topic_prefix
        self._logs: dict[str, list[list[Message]]] = {}
        self._committed: dict[tuple[str, TopicPartition], int] = {}
        self._version = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._started = False

    async def start(self) -> None:
        self._started = True

    async def stop(self) -> None:
        self._started = False

    async def ready(self) -> bool:
        return self._started

    def _log(self, topic: str) -> list[list[Message]]:
        return self._logs.setdefault(topic, [[] for _ in range(self.partitions)])

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        for topic in topics:
            self._log(topic)

    def partition_for(self, key: bytes | None, topic: str) -> int:
        if key is None:
            return sum(len(p) for p in self._log(topic)) % self.partitions
        return zlib.crc32(key) % self.partitions

    async def send(
        self, topic: str, value: bytes, *, key: str | bytes | None = None, headers: Headers = ()
    ) -> asyncio.Future[None]:
        if not self._started:
            raise ConnectionError("memory bus is not started")
        kb = as_bytes(key)
        partition = self.partition_for(kb, topic)
        log = self._log(topic)[partition]
        headers = tracing.inject(headers)
        log.append(Message(topic, partition, len(log), kb, value, tuple(headers), int(time.time() * 1000)))
        self._version += 1
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    async def publish(self, topic: str, value: bytes, *, key: str | bytes | None = None, headers: Headers = ()) -> None:
        await (await self.send(topic, value, key=key, headers=headers))

    async def committed_offsets(self, group_id: str) -> dict[TopicPartition, int]:
        """The offsets `group_id` has committed (next to read)."""
        return {tp: offset for (group, tp), offset in self._committed.items() if group == group_id}

    def consumer(self, topics: Sequence[str], group_id: str) -> MemoryConsumer:
        return MemoryConsumer(self, list(topics), group_id)

    # -- used by MemoryConsumer and tests --
    def messages(self, topic: str) -> list[Message]:
        return [m for part in self._log(topic) for m in part]

    async def wait_for_change(self, since: int, timeout: float) -> None:
        """Return once anything was sent after version `since`, or after `timeout` seconds."""
        if self._version != since:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass


class MemoryConsumer:
    def __init__(self, bus: MemoryBus, topics: list[str], group_id: str) -> None:
        self.bus, self.topics, self.group_id = bus, topics, group_id
        self._position: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        for topic in self.topics:
            for partition in range(len(self.bus._log(topic))):
                tp = TopicPartition(topic, partition)
                self._position[tp] = self.bus._committed.get((self.group_id, tp), 0)

    async def stop(self) -> None:
        self._position.clear()

    def _available(self, max_records: int) -> list[Message]:
        out: list[Message] = []
        for tp, pos in self._position.items():
            log = self.bus._log(tp.topic)[tp.partition]
            chunk = log[pos : pos + max_records - len(out)]
            out.extend(chunk)
            self._position[tp] = pos + len(chunk)
            if len(out) >= max_records:
                break
        return out

    async def getmany(self, timeout_ms: int, max_records: int) -> list[Message]:
        seen = self.bus._version
        out = self._available(max_records)
        if not out and timeout_ms > 0:
            await self.bus.wait_for_change(seen, timeout_ms / 1000)
            out = self._available(max_records)
        return out

    def lag(self) -> dict[TopicPartition, int]:
        return {tp: len(self.bus._log(tp.topic)[tp.partition]) - pos for tp, pos in self._position.items()}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            self.bus._committed[(self.group_id, tp)] = offset
