"""Kafka edge of the notifier: notification.requested.v1 in, notification.status.v1 out (in batches)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from npsloop_platform.bus import Bus
from npsloop_platform.consumer import EventConsumer, consumer_options
from npsloop_platform.uow import Received, UnitOfWork
from npsloop_schemas import NotificationKind, NotificationRequestedV1

from .config import NotifierSettings
from .handlers import deliver_batch
from .ports import Channel, DeliveryStore


def build_consumer(
    settings: NotifierSettings, bus: Bus, store: DeliveryStore, channels: Mapping[NotificationKind, Channel]
) -> EventConsumer:
    async def requested(items: Sequence[Received[NotificationRequestedV1]], uow: UnitOfWork) -> None:
        results = await deliver_batch(
            [(i.event, i.key) for i in items], store, channels, settings, settings.source_name, settings.max_in_flight
        )
        for item, result in zip(items, results, strict=True):
            if result.report is not None:
                uow.publish(result.report, item.key)
            if result.failure is not None:
                uow.dead_letter(item, result.failure)

    return EventConsumer(
        bus,
        settings.group_id,
        {NotificationRequestedV1: requested},
        **consumer_options(settings),
    )
