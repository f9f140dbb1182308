"""Helpers for tests that wait on asynchronous pipelines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..bus import Bus, Message


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def read_topic(bus: Bus, topic: str, count: int, timeout: float = 60) -> list[Message]:
    """Read at least `count` messages of a topic with a fresh consumer group."""
    consumer = bus.consumer([topic], f"reader-{time.monotonic_ns()}")
    await consumer.start()
    out: list[Message] = []
    try:
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            out += await consumer.getmany(200, 1000)
    finally:
        await consumer.stop()
    return out


async def committed_total(bus: Bus, group_id: str, topic: str) -> int:
    """How many messages of `topic` the group has committed, over all partitions (both buses)."""
    offsets = await bus.committed_offsets(group_id)
    return sum(offset for tp, offset in offsets.items() if tp.topic == topic and offset > 0)


async def make_key(
    database_url: str, role: str = "admin", tenant: str = "acme", stores: list[str] | None = None
) -> str:
    """An API key in the database at `database_url` (migrating the access schema first)."""
    from ..access import MIGRATIONS, SCHEMA, KeyStore, Role
    from ..db import Database, migrate

    await migrate(database_url, MIGRATIONS, SCHEMA)
    db = Database(database_url, pool_size=1)
    try:
        key, _ = await KeyStore(db).create(tenant, Role(role), stores, actor="test")
    finally:
        await db.stop()
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def feedback_body(score: int, **extra: Any) -> dict[str, Any]:
    return {"tenant_id": "acme", "store_id": "berlin-1", "channel": "pos", "score": score, **extra}


def feedback_event_json(score: object, **payload: Any) -> bytes:
    """A raw feedback.received.v1 message as a producer would put it on the wire (score unchecked)."""
    import json
    import uuid

    eid = str(uuid.uuid4())
    return json.dumps(
        {
            "event_id": eid,
            "event_type": "feedback.received",
            "schema_version": 1,
            "occurred_at": "2026-11-01T09:00:00Z",
            "tenant_id": "acme",
            "source": "test",
            "correlation_id": eid,
            "payload": {"score": score, "channel": "web", **payload},
        }
    ).encode()
