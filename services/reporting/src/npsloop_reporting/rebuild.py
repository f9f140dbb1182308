"""Rebuild the read model from the topics: empty the folded tables, replay every event from the
earliest offsets with a consumer group of its own, and fold them exactly like the live consumer
(same unit of work, same order per partition). The result is the same as folding them live.

The digest ledger (`reporting.digests`) is kept: it records what was sent, which no replay can
know. Stop the live reporting consumers while rebuilding; they resume from their own offsets
afterwards, and the inbox makes the overlap a no-op.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text

from npsloop_platform.bus import Bus, MemoryBus, Message, TopicPartition
from npsloop_platform.consumer import TOPIC_OF, key_of
from npsloop_platform.db import Database, migrate
from npsloop_platform.stores import StoreDirectory
from npsloop_platform.uow import Received
from npsloop_schemas import parse_event

from .consumer import MIGRATIONS, ReportingUnitOfWork
from .handlers import FOLDED
from .models import SCHEMA

log = logging.getLogger(__name__)
FOLDED_TABLES = ("inbox", "responses", "response_themes", "pending_texts", "cases", "deliveries")
TOPICS = list(dict.fromkeys(TOPIC_OF[cls] for cls in FOLDED))


@dataclass
class RebuildStats:
    total: int = 0  # messages on the topics when the rebuild started
    read: int = 0
    folded: int = 0
    skipped: int = 0  # poison or of a type reporting does not fold (dead-lettered when first consumed)
    seconds: float = 0.0


async def end_offsets(bus: Bus, topics: list[str]) -> tuple[dict[TopicPartition, int], int]:
    """The end offset of every partition, and how many messages the topics hold now."""
    if isinstance(bus, MemoryBus):
        await bus.ensure_topics(topics)
        ends = {}
        for topic in topics:
            for p in range(bus.partitions):
                ends[TopicPartition(topic, p)] = sum(1 for m in bus.messages(topic) if m.partition == p)
        return ends, sum(ends.values())
    from aiokafka import AIOKafkaConsumer
    from aiokafka import TopicPartition as KafkaTP

    from npsloop_platform.bus.kafka import KafkaBus

    assert isinstance(bus, KafkaBus)
    await bus.ensure_topics(topics)
    client = AIOKafkaConsumer(bootstrap_servers=bus.bootstrap, enable_auto_commit=False)
    await client.start()
    try:
        cluster = await client._client.fetch_all_metadata()  # the consumer's own cache is filled lazily
        tps = [
            KafkaTP(bus.physical(t), p)
            for t in topics
            for p in sorted(cluster.partitions_for_topic(bus.physical(t)) or [])
        ]
        ends_k = await client.end_offsets(tps)
        begins = await client.beginning_offsets(tps)
    finally:
        await client.stop()
    ends = {TopicPartition(bus.logical(tp.topic), tp.partition): off for tp, off in ends_k.items()}
    return ends, sum(ends_k[tp] - begins[tp] for tp in tps)


async def empty_tables(database_url: str, db: Database) -> None:
    await migrate(database_url, MIGRATIONS, SCHEMA)
    async with db.session() as session, session.begin():
        await session.execute(text("TRUNCATE " + ", ".join(f"{SCHEMA}.{t}" for t in FOLDED_TABLES)))


async def rebuild(
    bus: Bus,
    database_url: str,
    db: Database,
    stores: StoreDirectory,
    default_sla_s: float,
    group_prefix: str = "reporting",
    progress: Callable[[RebuildStats], None] | None = None,
    idle_s: float = 5.0,
    batch: int = 1000,
) -> RebuildStats:
    stats = RebuildStats()
    started = time.monotonic()
    await empty_tables(database_url, db)
    ends, stats.total = await end_offsets(bus, TOPICS)
    seen: dict[TopicPartition, int] = {}
    consumer = bus.consumer(TOPICS, f"{group_prefix}-rebuild-{uuid.uuid4().hex[:8]}")
    await consumer.start()
    last_data = time.monotonic()
    try:
        while not all(seen.get(tp, 0) >= end for tp, end in ends.items() if end > 0):
            messages = await consumer.getmany(200, batch)
            if not messages:
                if time.monotonic() - last_data > idle_s:
                    break  # transaction markers take offsets no message carries
                continue
            last_data = time.monotonic()
            await _fold_batch(messages, stores, db, default_sla_s, stats)
            for m in messages:
                seen[m.tp] = max(seen.get(m.tp, 0), m.offset + 1)
            await consumer.commit(dict(seen))
            stats.seconds = time.monotonic() - started
            if progress:
                progress(stats)
    finally:
        await consumer.stop()
    stats.seconds = time.monotonic() - started
    return stats


async def _fold_batch(
    messages: list[Message], stores: StoreDirectory, db: Database, default_sla_s: float, stats: RebuildStats
) -> None:
    items: list[Received[Any]] = []
    for msg in messages:
        stats.read += 1
        try:
            event = parse_event(msg.value or b"")
        except (ValidationError, ValueError):
            stats.skipped += 1
            continue
        if not isinstance(event, FOLDED):
            stats.skipped += 1
            continue
        items.append(Received(event, msg, key_of(event, msg)))
    async with ReportingUnitOfWork(db, stores, default_sla_s) as uow:
        uow.pending.extend(items)
        await uow.commit()
    stats.folded += uow.folded
