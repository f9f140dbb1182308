"""The bus interface both implementations honour.

Topics are *logical* names (`feedback.received.v1`); a bus maps them to physical names with its
topic prefix. `send` enqueues and returns a future resolved when the broker acknowledged the write;
`publish` waits for that acknowledgement.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

Headers = Sequence[tuple[str, bytes]]


class TopicPartition(NamedTuple):
    topic: str
    partition: int


@dataclass(frozen=True)
class Message:
    topic: str  # logical topic name
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = field(default_factory=tuple)
    timestamp_ms: int = 0

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class RawConsumer(Protocol):
    """Fetch and commit; the decode/DLQ/retry policy lives in `npsloop_platform.consumer`."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def getmany(self, timeout_ms: int, max_records: int) -> list[Message]: ...

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit *next* offsets to read, per partition."""
        ...


class Bus(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def ready(self) -> bool: ...

    async def ensure_topics(self, topics: Sequence[str]) -> None: ...

    async def send(
        self, topic: str, value: bytes, *, key: str | bytes | None = None, headers: Headers = ()
    ) -> asyncio.Future[None]: ...

    async def publish(
        self, topic: str, value: bytes, *, key: str | bytes | None = None, headers: Headers = ()
    ) -> None: ...

    async def committed_offsets(self, group_id: str) -> dict[TopicPartition, int]:
        """What `group_id` has committed: the next offset to read, per partition."""
        ...

    def consumer(self, topics: Sequence[str], group_id: str) -> RawConsumer: ...


def as_bytes(key: str | bytes | None) -> bytes | None:
    return key.encode() if isinstance(key, str) else key
