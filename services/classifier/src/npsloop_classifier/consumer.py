"""Kafka edge of the classifier: feedback.received.v1 in (feedback.received and feedback.updated),
feedback.classified.v1 out (feedback.classified and feedback.reclassified), on the input's key.

A whole batch is classified and published at once; the edge awaits the acks once and commits
the offsets once. Output ids derive from the input ids, so a batch redelivered after a crash
republishes the very same events and downstream dedupe on event_id holds.
"""

from __future__ import annotations

from collections.abc import Sequence

from npsloop_platform.bus import Bus
from npsloop_platform.consumer import EventConsumer, consumer_options
from npsloop_platform.uow import Received, UnitOfWork
from npsloop_schemas import FeedbackReceivedV1, FeedbackUpdatedV1

from .config import ClassifierSettings
from .handlers import Classifier, classify, reclassify
from .sentiment import SentimentModel


def build_consumer(
    settings: ClassifierSettings, bus: Bus, classifier: Classifier | SentimentModel | None = None
) -> EventConsumer:
    c = classifier if isinstance(classifier, Classifier) else Classifier(classifier)
    source = settings.source_name

    async def received(items: Sequence[Received[FeedbackReceivedV1]], uow: UnitOfWork) -> None:
        uow.publish_all([(classify(i.event, c, source), i.key) for i in items])

    async def updated(items: Sequence[Received[FeedbackUpdatedV1]], uow: UnitOfWork) -> None:
        uow.publish_all([(reclassify(i.event, c, source), i.key) for i in items])

    return EventConsumer(
        bus,
        settings.group_id,
        {FeedbackReceivedV1: received, FeedbackUpdatedV1: updated},
        **consumer_options(settings),
    )
