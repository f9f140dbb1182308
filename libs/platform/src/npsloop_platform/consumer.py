"""The one consume loop every service uses: decode, handle, dead-letter poison, commit.

* Offsets are committed only after the handler succeeded and everything it published was acked.
* A poison message (bad JSON, unknown version, failed validation, `PermanentError`) goes to
  `<topic>.dlq.<group>` with the reason and the original headers; the partition keeps moving.
* Transient failures (broker or database unreachable) are retried with backoff, never dropped.
  Any other exception is retried `max_attempts` times, then dead-lettered with its reason.
* `stop()` stops fetching, finishes the message in hand, waits for acks, commits and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from npsloop_schemas import Envelope, Event, Topics, parse_event, serialize_event, topic_for

from .bus.base import Bus, Headers, Message, TopicPartition

log = logging.getLogger(__name__)


class PermanentError(Exception):
    """This message can never be handled; dead-letter it with this reason."""


def default_is_transient(exc: BaseException) -> bool:
    """Outages of Kafka or Postgres: retry forever. Everything else is retried a few times."""
    if isinstance(exc, OSError | TimeoutError | ConnectionError):
        return True
    try:
        from aiokafka.errors import KafkaError

        if isinstance(exc, KafkaError):
            return True
    except ImportError:  # pragma: no cover
        pass
    try:
        from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

        if isinstance(exc, OperationalError | InterfaceError):
            return True
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
    except ImportError:  # pragma: no cover
        pass
    return False


class Publisher:
    """Collects what a handler publishes; the consumer waits for all acks before committing."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._pending: list[tuple[str, bytes, str | None, Headers, asyncio.Future[None]]] = []

    async def publish(self, event: Envelope, key: str | None, headers: Headers = ()) -> None:
        await self.publish_raw(topic_for(event), serialize_event(event), key, headers)

    async def publish_raw(self, topic: str, value: bytes, key: str | None, headers: Headers = ()) -> None:
        fut = await self.bus.send(topic, value, key=key, headers=headers)
        self._pending.append((topic, value, key, headers, fut))

    async def flush(self, stopping: asyncio.Event | None = None) -> bool:
        """Wait for every ack; re-send what failed (downstream dedupes on event_id) until acked.

        Returns False when `stopping` is set while sends still fail: the caller must then not
        commit, so the inputs are redelivered to the next owner instead of being lost.
        """
        delay = 0.2
        while self._pending:
            results = await asyncio.gather(*(p[4] for p in self._pending), return_exceptions=True)
            failed = [p for p, r in zip(self._pending, results, strict=True) if isinstance(r, BaseException)]
            if not failed:
                self._pending.clear()
                return True
            if stopping is not None and stopping.is_set():
                log.warning("shutting down with %d unacknowledged publishes; not committing", len(failed))
                return False
            log.warning("%d publishes failed (%s); re-sending in %.1fs", len(failed), results[0], delay)
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 10.0)
            self._pending = []
            for topic, value, key, headers, _ in failed:
                try:
                    await self.publish_raw(topic, value, key, headers)
                except Exception as exc:  # not connected yet: keep it for the next round
                    dead: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                    dead.set_exception(exc)
                    self._pending.append((topic, value, key, headers, dead))
        return True


Handler = Callable[[Event, Message, Publisher], Awaitable[None]]


@dataclass
class ConsumerStats:
    handled: int = 0
    dead_lettered: int = 0
    retries: int = 0
    last_error: str | None = None
    started_at: float = field(default_factory=time.time)


class _Stopping(Exception):
    pass


class EventConsumer:
    """A component: runs one consume loop for `group_id` over `topics`."""

    def __init__(
        self,
        bus: Bus,
        topics: Sequence[str],
        group_id: str,
        handler: Handler,
        *,
        is_transient: Callable[[BaseException], bool] = default_is_transient,
        max_attempts: int = 5,
        max_batch: int = 500,
        poll_ms: int = 200,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 10.0,
    ) -> None:
        self.bus, self.topics, self.group_id, self.handler = bus, list(topics), group_id, handler
        self.name = f"consumer:{group_id}"
        self.is_transient = is_transient
        self.max_attempts, self.max_batch, self.poll_ms = max_attempts, max_batch, poll_ms
        self.retry_initial_s, self.retry_max_s = retry_initial_s, retry_max_s
        self.stats = ConsumerStats()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running = False

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def ready(self) -> bool:
        return self._running and self._task is not None and not self._task.done()

    async def _ensure_topics(self) -> bool:
        """Create our topics and DLQs (clusters often disable auto-creation); retried while Kafka is down."""
        wanted = [*self.topics, *(Topics.dlq(t, self.group_id) for t in self.topics)]
        delay = self.retry_initial_s
        while not self._stopping.is_set():
            try:
                await self.bus.ensure_topics(wanted)
                return True
            except Exception as exc:
                log.warning("creating topics for %s failed, retrying in %.1fs: %s", self.group_id, delay, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                delay = min(delay * 2, self.retry_max_s)
        return False

    async def _run(self) -> None:
        if not await self._ensure_topics():
            return
        raw = self.bus.consumer(self.topics, self.group_id)
        await raw.start()
        self._running = True
        try:
            while not self._stopping.is_set():
                batch = await raw.getmany(self.poll_ms, self.max_batch)
                if batch:
                    await self._process_batch(raw, batch)
        except Exception:
            log.exception("consumer %s crashed", self.group_id)
            raise
        finally:
            self._running = False
            await raw.stop()

    async def _process_batch(self, raw: object, batch: list[Message]) -> None:
        publisher = Publisher(self.bus)
        done: dict[TopicPartition, int] = {}
        try:
            for msg in batch:
                if self._stopping.is_set() and done:
                    break  # finish what is in hand, commit it, leave the rest for the next owner
                await self._process(msg, publisher)
                done[msg.tp] = msg.offset + 1
        except _Stopping:
            pass
        finally:
            if await publisher.flush(self._stopping):
                await raw.commit(done)  # type: ignore[attr-defined]

    async def _process(self, msg: Message, publisher: Publisher) -> None:
        try:
            if msg.value is None:
                raise PermanentError("empty message value (tombstone) on an event topic")
            event = parse_event(msg.value)
        except (ValidationError, PermanentError, ValueError) as exc:
            await self._dead_letter(msg, exc)
            return
        attempts, delay = 0, self.retry_initial_s
        while True:
            try:
                await self.handler(event, msg, publisher)
                self.stats.handled += 1
                return
            except (PermanentError, ValidationError) as exc:
                await self._dead_letter(msg, exc)
                return
            except Exception as exc:
                self.stats.retries += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                transient = self.is_transient(exc)
                attempts += 0 if transient else 1
                if attempts >= self.max_attempts:
                    await self._dead_letter(msg, exc)
                    return
                log.warning(
                    "handler failed on %s[%d]@%d (%s, %s); retrying in %.1fs",
                    msg.topic,
                    msg.partition,
                    msg.offset,
                    "transient" if transient else f"attempt {attempts}",
                    self.stats.last_error,
                    delay,
                )
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay * random.uniform(0.5, 1.5))
                    raise _Stopping() from exc
                except TimeoutError:
                    pass
                delay = min(delay * 2, self.retry_max_s)

    async def _dead_letter(self, msg: Message, exc: BaseException) -> None:
        reason = _reason(exc)
        dlq = Topics.dlq(msg.topic, self.group_id)
        headers = [
            *msg.headers,
            ("npsloop-dlq-reason", reason.encode()[:8000]),
            ("npsloop-dlq-error-type", type(exc).__name__.encode()),
            ("npsloop-dlq-source", f"{msg.topic}[{msg.partition}]@{msg.offset}".encode()),
            ("npsloop-dlq-group", self.group_id.encode()),
        ]
        log.error("dead-lettering %s[%d]@%d to %s: %s", msg.topic, msg.partition, msg.offset, dlq, reason)
        delay = 0.2
        while True:
            try:
                await self.bus.publish(dlq, msg.value or b"", key=msg.key, headers=headers)
                break
            except Exception as send_exc:  # the DLQ is Kafka too: an outage is retried, never dropped
                if self._stopping.is_set():
                    raise _Stopping() from send_exc
                log.warning("DLQ publish failed, retrying: %s", send_exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        self.stats.dead_lettered += 1


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors(include_url=False)]
        return "validation failed: " + "; ".join(parts)
    return f"{type(exc).__name__}: {exc}"
