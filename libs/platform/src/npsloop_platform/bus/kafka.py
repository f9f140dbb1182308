"""The Kafka bus on aiokafka: idempotent producer with acks=all, manual-commit consumers.

`start()` never blocks on the broker: it connects in the background with backoff, so that a
service stays alive (liveness) while Kafka is down, and reports not-ready (readiness) until then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as KafkaTP
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    OutOfOrderSequenceNumber,
    UnknownProducerId,
)
from aiokafka.partitioner import DefaultPartitioner

from .. import tracing
from ..retry import Stopped, retrying
from .base import Headers, Message, TopicPartition, as_bytes
from .partitioning import partition_for

log = logging.getLogger(__name__)


class BusUnavailable(ConnectionError):
    """The broker cannot be reached right now; retry later."""


#: Errors after which an idempotent producer never succeeds again: its sequence numbers no longer
#: match the broker's (a batch expired while the broker was down, the broker lost the producer id).
#: Found by stopping the broker under load: every publish after its return failed with
#: OutOfOrderSequenceNumber. The cure is a new producer, with a new producer id.
PRODUCER_STATE_LOST = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch, InvalidProducerIdMapping)


class KafkaBus:
    name = "kafka"

    def __init__(
        self,
        bootstrap: str,
        *,
        topic_prefix: str = "",
        request_timeout_ms: int = 30_000,
        partitions: int = 3,
        linger_ms: int = 5,
        max_batch_size: int = 512 * 1024,
        fetch_max_wait_ms: int = 25,
        fetch_min_bytes: int = 16_384,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic_prefix = topic_prefix
        self.partitions = partitions
        self._request_timeout_ms = request_timeout_ms
        self._linger_ms = linger_ms
        # Per partition, what one produce request carries. aiokafka's 16 KiB default split a batch
        # of 1,000 answers into ~25 requests per partition, each a round of CPU here and in the broker.
        self._max_batch_size = max_batch_size
        self.fetch_max_wait_ms, self.fetch_min_bytes = fetch_max_wait_ms, fetch_min_bytes
        self._producer: AIOKafkaProducer | None = None
        self._connected = asyncio.Event()
        self._stopping = asyncio.Event()
        self._connect_task: asyncio.Task[None] | None = None

    def physical(self, topic: str) -> str:
        return self.topic_prefix + topic

    def logical(self, topic: str) -> str:
        return topic[len(self.topic_prefix) :] if topic.startswith(self.topic_prefix) else topic

    async def start(self) -> None:
        self._stopping.clear()
        self._connect_task = asyncio.create_task(self._connect(), name="kafka-producer-connect")

    async def _connect(self) -> None:
        async def attempt() -> None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                enable_idempotence=True,
                acks="all",
                linger_ms=self._linger_ms,
                max_batch_size=self._max_batch_size,
                request_timeout_ms=self._request_timeout_ms,
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer

        try:
            await retrying("kafka producer connect", attempt, stopping=self._stopping, transient=lambda _: True)
        except Stopped:
            return
        if self._producer is not None:
            self._connected.set()
            log.info("kafka producer connected to %s", self.bootstrap)

    async def wait_connected(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def stop(self) -> None:
        self._stopping.set()
        if self._connect_task is not None:
            await self._connect_task
        if self._producer is not None:
            await self._producer.stop()  # flushes what is still buffered
            self._producer = None
        self._connected.clear()

    async def ready(self) -> bool:
        if self._producer is None:
            return False
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 3)
            return True
        except (KafkaError, OSError, TimeoutError):
            return False

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create missing topics (idempotent); the broker's auto-create is not relied upon."""
        wanted = {self.physical(t) for t in topics}
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = sorted(wanted - existing)
            if missing:
                await admin.create_topics(
                    [NewTopic(name, num_partitions=self.partitions, replication_factor=1) for name in missing]
                )
                # wait until metadata shows them, so consumers get assignments at once
                for _ in range(50):
                    if wanted <= set(await admin.list_topics()):
                        break
                    await asyncio.sleep(0.1)
        finally:
            await admin.close()

    async def send(
        self, topic: str, value: bytes, *, key: str | bytes | None = None, headers: Headers = ()
    ) -> asyncio.Future[None]:
        if self._producer is None:
            raise BusUnavailable(f"Kafka at {self.bootstrap} is not connected")
        producer = self._producer
        fut: asyncio.Future[None] = await producer.send(
            self.physical(topic), value, key=as_bytes(key), headers=list(tracing.inject(headers))
        )
        fut.add_done_callback(lambda f: self._check_producer_state(f, producer))
        return fut

    async def send_many(
        self,
        topic: str,
        messages: Sequence[tuple[bytes, str | bytes | None] | tuple[bytes, str | bytes | None, Headers]],
        *,
        headers: Headers = (),
    ) -> list[asyncio.Future[Any]]:
        """Send many (value, key) messages at once: one record batch per partition instead of one
        `send` each. The futures resolve when the broker acknowledged; each stands for one batch.
        A message may carry headers of its own as a third item (a trace context), after `headers`.

        `send` per message was a fifth of ingest's CPU for a batch of 1,000 (metadata wait, the
        partitioner, one future and one accumulator append each). Partitions are chosen exactly as
        `send` chooses them (the default partitioner's murmur2), so a key stays on its partition.
        """
        if self._producer is None:
            raise BusUnavailable(f"Kafka at {self.bootstrap} is not connected")
        producer = self._producer
        physical = self.physical(topic)
        await producer.client._wait_on_metadata(physical)
        extra = list(tracing.inject(headers))
        by_partition: dict[int, list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]] = {}
        # A keyed message on the default partitioner: the same choice, computed here once per
        # topic instead of per message (`partitioning.py`); anything else asks the producer.
        partitions = sorted(producer._metadata.partitions_for_topic(physical) or ())
        ours = bool(partitions) and type(producer._partitioner) is DefaultPartitioner
        for message in messages:
            value, key = message[0], message[1]
            own = [*extra, *message[2]] if len(message) > 2 else extra
            raw_key = as_bytes(key)
            if ours and raw_key is not None:
                partition = partition_for(raw_key, partitions)
            else:
                partition = producer._partition(physical, None, key, value, raw_key, value)
            by_partition.setdefault(partition, []).append((raw_key, value, own))
        futures: list[asyncio.Future[Any]] = []
        for partition, records in by_partition.items():
            batch = producer.create_batch()
            for raw_key, value, own in records:
                if batch.append(timestamp=None, key=raw_key, value=value, headers=own) is not None:
                    continue
                if batch.record_count():  # full: send it, go on in a new one
                    futures.append(await producer.send_batch(batch, physical, partition=partition))
                    batch = producer.create_batch()
                    if batch.append(timestamp=None, key=raw_key, value=value, headers=own) is not None:
                        continue
                # larger than a whole batch: on its own, as `send` would
                futures.append(await producer.send(physical, value, key=raw_key, partition=partition, headers=own))
            if batch.record_count():
                futures.append(await producer.send_batch(batch, physical, partition=partition))
        for fut in futures:
            fut.add_done_callback(lambda f: self._check_producer_state(f, producer))
        return futures

    def _check_producer_state(self, fut: asyncio.Future[None], producer: AIOKafkaProducer) -> None:
        if fut.cancelled() or not isinstance(fut.exception(), PRODUCER_STATE_LOST):
            return
        if self._producer is not producer or self._stopping.is_set():
            return  # already replaced, or shutting down
        log.warning("kafka producer lost its sequence state (%s); replacing it", type(fut.exception()).__name__)
        self._producer = None  # sends answer BusUnavailable until the new one is connected
        self._connected.clear()
        loop = asyncio.get_running_loop()
        self._connect_task = loop.create_task(self._replace(producer), name="kafka-producer-reset")

    async def _replace(self, old: AIOKafkaProducer) -> None:
        try:
            await asyncio.wait_for(old.stop(), 10)
        except Exception as exc:  # its buffered batches fail; their senders already got errors
            log.info("old kafka producer stopped with %s", type(exc).__name__)
        await self._connect()

    async def publish(self, topic: str, value: bytes, *, key: str | bytes | None = None, headers: Headers = ()) -> None:
        await (await self.send(topic, value, key=key, headers=headers))

    async def committed_offsets(self, group_id: str) -> dict[TopicPartition, int]:
        """The offsets `group_id` has committed (next to read), by logical topic."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(self.topic_prefix + group_id)
        finally:
            await admin.close()
        return {TopicPartition(self.logical(tp.topic), tp.partition): meta.offset for tp, meta in offsets.items()}

    def consumer(self, topics: Sequence[str], group_id: str) -> KafkaRawConsumer:
        return KafkaRawConsumer(self, list(topics), group_id)


class KafkaRawConsumer:
    def __init__(self, bus: KafkaBus, topics: list[str], group_id: str) -> None:
        self.bus, self.topics, self.group_id = bus, topics, group_id
        self._consumer: AIOKafkaConsumer | None = None
        self._positions: dict[KafkaTP, int] = {}  # next offset to read, per partition fetched from

    async def start(self) -> None:
        """One attempt to join the group; the consumer edge retries it while Kafka is down."""
        consumer = AIOKafkaConsumer(
            *[self.bus.physical(t) for t in self.topics],
            bootstrap_servers=self.bus.bootstrap,
            group_id=self.bus.topic_prefix + self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_interval_ms=300_000,
            # Let the broker gather a few KB (or wait up to fetch_max_wait_ms) per fetch: far fewer
            # fetches, and so less CPU in the broker and here, for a few ms more latency per hop.
            fetch_max_wait_ms=self.bus.fetch_max_wait_ms,
            fetch_min_bytes=self.bus.fetch_min_bytes,
        )
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def getmany(self, timeout_ms: int, max_records: int) -> list[Message]:
        if self._consumer is None:
            await asyncio.sleep(timeout_ms / 1000)
            return []
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        out: list[Message] = []
        for tp, records in batches.items():
            topic = self.bus.logical(tp.topic)
            if records:
                self._positions[tp] = records[-1].offset + 1
            for r in records:
                out.append(
                    Message(
                        topic,
                        tp.partition,
                        r.offset,
                        r.key,
                        r.value,
                        tuple((k, v) for k, v in (r.headers or ())),
                        r.timestamp,
                    )
                )
        return out

    def lag(self) -> dict[TopicPartition, int]:
        """Per partition fetched from: the newest offset (as of the last fetch) minus our position."""
        out: dict[TopicPartition, int] = {}
        if self._consumer is None:
            return out
        for tp, position in self._positions.items():
            high = self._consumer.highwater(tp)
            if high is not None:
                out[TopicPartition(self.bus.logical(tp.topic), tp.partition)] = max(0, high - position)
        return out

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self._consumer is None or not offsets:
            return
        try:
            await self._consumer.commit(
                {KafkaTP(self.bus.physical(tp.topic), tp.partition): off for tp, off in offsets.items()}
            )
        except CommitFailedError as exc:
            # The group rebalanced; the new owner re-reads from the last commit (idempotent handlers).
            log.warning("commit failed after a rebalance, messages will be redelivered: %s", exc)
