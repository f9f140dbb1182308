"""The one consumer edge every service uses: a registry of batch handlers by event type.

What one poll returns is handled as one batch:

1. Decode every message once, extract its key once. A poison message (bad JSON, unknown version,
   failed validation, an event type nobody here handles) goes to `<topic>.dlq.<group>` with its
   reason and original headers; the rest of the batch goes on.
2. Open ONE unit of work, hand each registered handler its events (in poll order, so per-key
   order holds), commit once. Then send what the handlers published, run the after-commit hooks.
3. Wait for every ack once, then commit the offsets once.

Failures: an outage (`retry.is_transient`) is retried with backoff until it passes, never
dropped. Any other failure of a batch bisects it: each half runs in its own unit of work, down to
the one message at fault, which is retried `max_attempts` times (a `PermanentError` or a
`ValidationError` at once) and then dead-lettered alone; the messages around it are handled
exactly once. `stop()` stops fetching, finishes the batch in hand, waits for acks, commits, closes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from npsloop_schemas import EVENT_TYPES, Envelope, Event, Topics, customer_key, parse_event, serialize_event

from . import metrics, tracing
from .bus.base import Bus, Headers, Message, RawConsumer, TopicPartition
from .component import Background
from .retry import Stopped, is_transient, retrying
from .uow import Received, UnitOfWork

log = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence[Received[Any]], Any], Awaitable[None]]
"""`async def handle(items: Sequence[Received[SomeEventV1]], uow: SomeUnitOfWork) -> None`."""

TOPIC_OF: dict[type[Envelope], str] = {cls: topic for cls, topic in EVENT_TYPES.values()}


def consumer_options(settings: Any) -> dict[str, Any]:
    """The EventConsumer options every service takes from its settings (NPSLOOP_CONSUMER_*)."""
    return {"max_batch": settings.consumer_max_batch, "stuck_after_s": settings.consumer_stuck_after_s}


class PermanentError(Exception):
    """This message can never be handled; dead-letter it with this reason."""


def is_fatal(exc: BaseException) -> bool:
    return isinstance(exc, PermanentError | ValidationError)


def key_of(event: Envelope, msg: Message) -> str:
    """The message key (the customer key); events without one fall back to what they carry."""
    if msg.key:
        return msg.key.decode(errors="replace")
    payload: Any = getattr(event, "payload", None)
    if isinstance(getattr(payload, "customer_key", None), str):
        return str(payload.customer_key)
    if payload is not None and hasattr(payload, "customer_id") and hasattr(payload, "score"):
        return customer_key(event.tenant_id, payload.customer_id, event.event_id)
    return event.tenant_id


_Record = tuple[str, bytes, str | bytes | None, Headers]  # topic, value, key, headers


class Publisher:
    """Sends what a batch published; `flush()` waits for all acks before offsets are committed.

    A batch's events go out together (`publish_many`): on Kafka one record batch per partition
    (`KafkaBus.send_many`) instead of one `send` each, which was a tenth of the classifier's CPU.
    A failed send is kept, with every record it carried, and re-sent by `flush()`."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.sent = 0
        self._pending: list[tuple[list[_Record], asyncio.Future[Any]]] = []  # records, one ack for them all
        self._failed: list[tuple[_Record, BaseException]] = []

    async def publish(self, event: Envelope, key: str | None, headers: Headers = ()) -> None:
        await self.publish_raw(TOPIC_OF[type(event)], serialize_event(event), key, headers)

    async def publish_raw(self, topic: str, value: bytes, key: str | bytes | None, headers: Headers = ()) -> None:
        await self._send([(topic, value, key, headers)])

    async def publish_many(self, events: Sequence[tuple[Envelope, str | None, Headers]]) -> None:
        await self._send([(TOPIC_OF[type(e)], serialize_event(e), key, headers) for e, key, headers in events])

    async def _send(self, records: list[_Record]) -> None:
        send_many = getattr(self.bus, "send_many", None)
        if send_many is None or len(records) == 1:
            for record in records:
                topic, value, key, headers = record
                try:
                    fut: Any = await self.bus.send(topic, value, key=key, headers=headers)
                except Exception as exc:  # not connected: keep it, flush() re-sends it
                    self._failed.append((record, exc))
                    continue
                self._pending.append(([record], fut))
            return
        by_topic: dict[str, list[_Record]] = {}
        for record in records:  # in order within a topic, so within a key
            by_topic.setdefault(record[0], []).append(record)
        for topic, group in by_topic.items():
            try:
                futures = await send_many(topic, [(value, key, headers) for _, value, key, headers in group])
            except Exception as exc:
                self._failed += [(record, exc) for record in group]
                continue
            self._pending.append((group, asyncio.gather(*futures)))

    async def flush(self, stopping: asyncio.Event) -> bool:
        """Wait for every ack; re-send what failed (downstream dedupes on event_id) until acked.

        Returns False when `stopping` is set while sends still fail: the caller must then not
        commit, so the inputs are redelivered to the next owner instead of being lost.
        """

        async def attempt() -> None:
            retry, self._failed = self._failed, []
            if retry:
                await self._send([record for record, _ in retry])
            pending, self._pending = self._pending, []
            results = await asyncio.gather(*(fut for _, fut in pending), return_exceptions=True)
            for (records, _), result in zip(pending, results, strict=True):
                if isinstance(result, BaseException):
                    self._failed += [(record, result) for record in records]
                else:
                    self.sent += len(records)
            if self._failed:
                raise ConnectionError(f"{len(self._failed)} publishes not acknowledged: {self._failed[0][1]}")

        try:
            await retrying("publishing", attempt, stopping=stopping, transient=lambda _: True)
        except Stopped:
            log.warning("shutting down with %d unacknowledged publishes; not committing", len(self._failed))
            return False
        return True


@dataclass
class ConsumerStats:
    handled: int = 0
    dead_lettered: int = 0
    retries: int = 0
    batches: int = 0
    bisections: int = 0
    last_error: str | None = None
    started_at: float = field(default_factory=time.time)


class _Poison(Exception):
    pass


class EventConsumer(Background):
    """A component: one consume loop for `group_id` over the topics of the registered event types."""

    def __init__(
        self,
        bus: Bus,
        group_id: str,
        handlers: Mapping[type[Envelope], BatchHandler],
        *,
        unit_of_work: Callable[[], UnitOfWork] = UnitOfWork,
        transient: Callable[[BaseException], bool] = is_transient,
        max_attempts: int = 5,
        max_batch: int = 500,
        poll_ms: int = 200,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 10.0,
        stuck_after_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.bus, self.group_id, self.handlers = bus, group_id, dict(handlers)
        self.topics = list(dict.fromkeys(TOPIC_OF[cls] for cls in self.handlers))
        self.name = f"consumer:{group_id}"
        self.unit_of_work, self.transient = unit_of_work, transient
        self.max_attempts, self.max_batch, self.poll_ms = max_attempts, max_batch, poll_ms
        self.retry_initial_s, self.retry_max_s = retry_initial_s, retry_max_s
        self.stuck_after_s, self.clock = stuck_after_s, clock
        self.stats = ConsumerStats()
        self._m_batch = metrics.BATCH_SIZE.labels(group_id)
        self._m_handler = metrics.HANDLER_SECONDS.labels(group_id)
        self._busy_since: float | None = None
        self._consuming = False
        self._poll: asyncio.Future[list[Message]] | None = None
        self._spans = tracing.BatchSpans(group_id)
        self._expect = tuple(self.handlers)

    # -- lifecycle --------------------------------------------------------------------------
    async def ready(self) -> bool:
        """Consuming, and not stuck on one batch (a fault retried, a hung call) for too long."""
        if not (self.running() and self._consuming):
            return False
        return self._busy_since is None or self.clock() - self._busy_since <= self.stuck_after_s

    def stuck_for(self) -> float:
        return 0.0 if self._busy_since is None else self.clock() - self._busy_since

    async def run(self) -> None:
        wanted = [*self.topics, *(Topics.dlq(t, self.group_id) for t in self.topics)]
        # Clusters often disable auto-creation: create our topics and DLQs, waiting out an outage.
        await self._retry(f"creating topics for {self.group_id}", lambda: self.bus.ensure_topics(wanted))
        raw = self.bus.consumer(self.topics, self.group_id)
        await self._retry(f"starting consumer {self.group_id}", raw.start)
        self._consuming = True
        try:
            while not self.stopping.is_set():
                poll = self._poll = asyncio.ensure_future(raw.getmany(self.poll_ms, self.max_batch))
                try:
                    batch = await poll
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if not poll.cancelled() or (task is not None and task.cancelling()):
                        raise
                    break  # stop() woke the poll
                finally:
                    self._poll = None
                if batch:
                    await self._process_poll(raw, batch)
        finally:
            self._consuming = False
            await raw.stop()

    def stop_requested(self) -> None:
        """Wake a poll that waits for records, so a stop need not wait out `poll_ms`. Nothing is
        lost: a poll only waits between fetches (records are taken from the fetch buffer without a
        pause), and offsets are committed only for batches handled."""
        if self._poll is not None:
            self._poll.cancel()

    async def _retry(self, what: str, attempt: Callable[[], Awaitable[None]]) -> None:
        await retrying(what, attempt, stopping=self.stopping, transient=lambda _: True, initial_s=self.retry_initial_s)

    # -- one poll ---------------------------------------------------------------------------
    async def _process_poll(self, raw: RawConsumer, batch: list[Message]) -> None:
        publisher = Publisher(self.bus)
        self._busy_since = self.clock()
        self.stats.batches += 1
        self._m_batch.observe(len(batch))
        lag = getattr(raw, "lag", None)
        if lag is not None:
            for tp, behind in lag().items():
                metrics.CONSUMER_LAG.labels(self.group_id, tp.topic, str(tp.partition)).set(behind)
        try:
            items: list[Received[Any]] = []
            for msg in batch:
                try:
                    items.append(self._decode(msg))
                except _Poison as exc:
                    await self._dead_letter(publisher, msg, exc.__cause__ or exc)
            self._spans.start(items)
            await self._handle(items, publisher)
            if await publisher.flush(self.stopping):
                offsets: dict[TopicPartition, int] = {}
                for msg in batch:
                    offsets[msg.tp] = max(offsets.get(msg.tp, 0), msg.offset + 1)
                await raw.commit(offsets)
        except Stopped:
            log.info("consumer %s stopping with a batch in hand: not committed, redelivered", self.group_id)
        finally:
            self._busy_since = None
            self._spans.end()

    def _decode(self, msg: Message) -> Received[Any]:
        try:
            if msg.value is None:
                raise PermanentError("empty message value (tombstone) on an event topic")
            # the handled types tried first: ~2 us less an event than choosing among all
            event: Event = parse_event(msg.value, expect=self._expect)
        except (ValidationError, PermanentError, ValueError) as exc:
            raise _Poison() from exc
        if type(event) not in self.handlers:
            raise _Poison() from PermanentError(f"{self.group_id} does not handle {event.type_tag} (on {msg.topic})")
        return Received(event, msg, key_of(event, msg))

    async def _handle(self, items: Sequence[Received[Any]], publisher: Publisher) -> None:
        """Handle `items` in one unit of work; on a fault, bisect down to the message at fault."""
        if not items:
            return
        single = len(items) == 1
        try:
            uow = await retrying(
                f"{self.group_id}: batch of {len(items)}",
                lambda: self._run_unit(items),
                stopping=self.stopping,
                transient=self.transient,
                fatal=is_fatal if single else lambda e: not self.transient(e),
                max_attempts=self.max_attempts if single else 1,
                initial_s=self.retry_initial_s,
                max_s=self.retry_max_s,
                on_retry=self._on_retry,
                log_extra=items[0].log_extra() if single else None,
            )
        except Stopped:
            raise
        except Exception as exc:
            if single:
                await self._dead_letter(publisher, items[0].msg, exc, items[0])
                return
            self.stats.bisections += 1
            mid = len(items) // 2
            log.warning(
                "%s: a batch of %d failed (%s: %s); handling its halves apart",
                self.group_id,
                len(items),
                type(exc).__name__,
                exc,
            )
            await self._handle(items[:mid], publisher)
            await self._handle(items[mid:], publisher)
            return
        await publisher.publish_many(
            [
                (out.event, out.key, tracing.inject(out.headers, self._spans.context_for(out.event.causation_id)))
                for out in uow.outgoing
            ]
        )
        for item, reason in uow.refused:
            await self._dead_letter(publisher, item.msg, reason, item)
        for hook in uow.hooks:
            hook()
        self.stats.handled += len(items) - len(uow.refused)
        metrics.count_events(metrics.CONSUMED, self.group_id, (i.event.type_tag for i in items))
        if uow.outgoing:
            metrics.count_events(metrics.PUBLISHED, self.group_id, (o.event.type_tag for o in uow.outgoing))
            metrics.count_deliveries(o.event for o in uow.outgoing)

    async def _run_unit(self, items: Sequence[Received[Any]]) -> UnitOfWork:
        # Grouped by handler, not by type: one handler registered for several types (events of
        # one topic) sees them all, in poll order, so per-key order holds across those types.
        by_handler: dict[BatchHandler, list[Received[Any]]] = {}
        for item in items:
            by_handler.setdefault(self.handlers[type(item.event)], []).append(item)
        with self._m_handler.time():
            async with self.unit_of_work() as uow:
                for handler, group in by_handler.items():
                    await handler(group, uow)
                await uow.commit()
        return uow

    def _on_retry(self, exc: BaseException, transient: bool) -> None:
        self.stats.retries += 1
        metrics.RETRIES.labels(self.group_id).inc()
        self.stats.last_error = f"{type(exc).__name__}: {exc}"

    async def _dead_letter(
        self, publisher: Publisher, msg: Message, exc: BaseException, item: Received[Any] | None = None
    ) -> None:
        reason = reason_of(exc)
        dlq = Topics.dlq(msg.topic, self.group_id)
        source = f"{msg.topic}[{msg.partition}]@{msg.offset}"
        headers = [*msg.headers, *dlq_headers(reason, exc, source, self.group_id)]
        log.error(
            "dead-lettering %s[%d]@%d to %s: %s",
            msg.topic,
            msg.partition,
            msg.offset,
            dlq,
            reason,
            extra=item.log_extra() if item else {},
        )
        await publisher.publish_raw(dlq, msg.value or b"", msg.key, headers)
        self.stats.dead_lettered += 1
        metrics.DEAD_LETTERED.labels(self.group_id, msg.topic).inc()


def reason_of(exc: BaseException) -> str:
    """Why a message was refused; a validation error names fields and rules, never the input."""
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors(include_url=False)]
        return "validation failed: " + "; ".join(parts)
    return f"{type(exc).__name__}: {exc}"


def dlq_headers(reason: str, exc: BaseException, source: str, group: str) -> list[tuple[str, bytes]]:
    """The four `npsloop-dlq-*` headers every dead-lettered message carries (README, AsyncAPI)."""
    return [
        ("npsloop-dlq-reason", reason.encode()[:8000]),
        ("npsloop-dlq-error-type", type(exc).__name__.encode()),
        ("npsloop-dlq-source", source.encode()),
        ("npsloop-dlq-group", group.encode()),
    ]
