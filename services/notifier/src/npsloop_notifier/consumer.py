"""Kafka edge of the notifier: notification.requested.v1 in, notification.status.v1 out."""

from __future__ import annotations

from collections.abc import Mapping

from npsloop_platform.bus import Bus, Message
from npsloop_platform.consumer import EventConsumer, PermanentError, Publisher
from npsloop_schemas import Event, NotificationKind, NotificationRequestedV1, NotificationStatusV1, Topics

from .channels import Channel
from .config import NotifierSettings
from .handlers import DeliveryFailed, DeliveryStore, deliver


def build_consumer(
    settings: NotifierSettings, bus: Bus, store: DeliveryStore, channels: Mapping[NotificationKind, Channel]
) -> EventConsumer:
    async def handle(event: Event, msg: Message, publisher: Publisher) -> None:
        if not isinstance(event, NotificationRequestedV1):
            raise PermanentError(f"{event.type_tag} does not belong on {Topics.NOTIFICATION_REQUESTED}")
        key = msg.key.decode() if msg.key else event.payload.customer_key

        async def report(status: NotificationStatusV1) -> None:
            await publisher.publish(status, key=key)

        try:
            await deliver(event, store, channels, settings, report, settings.source_name)
        except DeliveryFailed as exc:
            raise PermanentError(str(exc)) from exc

    return EventConsumer(bus, [Topics.NOTIFICATION_REQUESTED], settings.group_id, handle)
