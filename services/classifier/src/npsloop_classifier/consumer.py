"""Kafka edge of the classifier: feedback.received.v1 in, feedback.classified.v1 out.

A whole batch is classified and published at once; the edge awaits the acks once and commits
the offsets once.
"""

from __future__ import annotations

from collections.abc import Sequence

from npsloop_platform.bus import Bus
from npsloop_platform.consumer import EventConsumer, consumer_options
from npsloop_platform.uow import Received, UnitOfWork
from npsloop_schemas import FeedbackReceivedV1

from .config import ClassifierSettings
from .handlers import classify
from .sentiment import SentimentModel


def build_consumer(settings: ClassifierSettings, bus: Bus, sentiment: SentimentModel) -> EventConsumer:
    async def received(items: Sequence[Received[FeedbackReceivedV1]], uow: UnitOfWork) -> None:
        uow.publish_all([(classify(i.event, sentiment, settings.source_name), i.key) for i in items])

    return EventConsumer(
        bus,
        settings.group_id,
        {FeedbackReceivedV1: received},
        **consumer_options(settings),
    )
