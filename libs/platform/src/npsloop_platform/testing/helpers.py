"""Helpers for tests that wait on asynchronous pipelines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
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


async def read_all(bus: Bus, topic: str) -> list[Message]:
    """Every message of `topic` there is now: read up to the end offsets taken at the call, not
    until a quiet period. A message whose send was acknowledged before the call is in the answer."""
    from ..bus.kafka import KafkaBus
    from ..bus.memory import MemoryBus

    if isinstance(bus, MemoryBus):
        return bus.messages(topic)
    assert isinstance(bus, KafkaBus), f"read_all knows the memory and Kafka buses, not {type(bus).__name__}"
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    await bus.ensure_topics([topic])
    physical = bus.physical(topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bus.bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=bus.bootstrap)
        await admin.start()
        try:
            (described,) = await admin.describe_topics([physical])
        finally:
            await admin.close()
        tps = [TopicPartition(physical, p["partition"]) for p in described["partitions"]]
        assert tps, f"{physical} has no partitions: {described}"
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[Message] = []
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for tp, records in (await consumer.getmany(*tps, timeout_ms=1000)).items():
                for r in records:
                    if r.offset < ends[tp]:
                        out.append(
                            Message(topic, tp.partition, r.offset, r.key, r.value, tuple(r.headers or ()), r.timestamp)
                        )
        return out
    finally:
        await consumer.stop()


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


@contextmanager
def npsloop_run(database_url: str, data_dir: Path, timeout: float = 60) -> Iterator[str]:
    """`npsloop run` as its own process on a free port, until ready; yields its base URL and stops it."""
    import os
    import subprocess
    import sys

    import httpx

    from .servers import free_port

    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "NPSLOOP_LOG_LEVEL": "WARNING"}
    argv = [sys.executable, "-m", "npsloop.cli", "run", "--port", str(port), "--data-dir", str(data_dir)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, "npsloop run exited"
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "npsloop run was not ready in time"
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def dev_keys(data_dir: Path) -> dict[str, str]:
    """The keys the first `npsloop run` wrote to <data dir>/dev-keys.env."""
    text = (data_dir / "dev-keys.env").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
