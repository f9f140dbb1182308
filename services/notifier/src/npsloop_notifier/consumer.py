"""Kafka edge of the notifier: notification.requested.v1 in, notification.status.v1 out (in
batches); every case event type on case.events.v1 in, CRM webhooks out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from npsloop_platform.bus import Bus
from npsloop_platform.consumer import BatchHandler, EventConsumer, consumer_options
from npsloop_platform.uow import Received, UnitOfWork
from npsloop_schemas import EVENT_TYPES, Envelope, NotificationRequestedV1, Topics

from .config import NotifierSettings
from .handlers import Notifier
from .webhook_handlers import WebhookDispatcher

#: Every event type published on case.events.v1, from the registry: new ones are forwarded too.
CASE_EVENT_TYPES: tuple[type[Envelope], ...] = tuple(
    cls for cls, topic in EVENT_TYPES.values() if topic == Topics.CASE_EVENTS
)


def build_consumer(settings: NotifierSettings, bus: Bus, notifier: Notifier) -> EventConsumer:
    async def requested(items: Sequence[Received[NotificationRequestedV1]], uow: UnitOfWork) -> None:
        results = await notifier.deliver_batch([(i.event, i.key) for i in items])
        for item, result in zip(items, results, strict=True):
            if result.report is not None:
                uow.publish(result.report, item.key)
            if result.failure is not None:
                uow.dead_letter(item, result.failure)

    return EventConsumer(bus, settings.group_id, {NotificationRequestedV1: requested}, **consumer_options(settings))


def build_webhook_consumer(settings: NotifierSettings, bus: Bus, webhooks: WebhookDispatcher) -> EventConsumer:
    """Its own consumer group (`<group>-webhooks`): a CRM that is down and retried never delays
    the emails and calls to customers."""

    async def case_events(items: Sequence[Received[Any]], uow: UnitOfWork) -> None:
        await webhooks.handle([(i.event, i.msg.value or b"", i.key) for i in items])

    handlers: dict[type[Envelope], BatchHandler] = dict.fromkeys(CASE_EVENT_TYPES, case_events)
    return EventConsumer(bus, f"{settings.group_id}-webhooks", handlers, **consumer_options(settings))
