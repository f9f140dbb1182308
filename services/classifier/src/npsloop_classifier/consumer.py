"""Kafka edge of the classifier: feedback.received.v1 in, feedback.classified.v1 out."""

from __future__ import annotations

from npsloop_platform.bus import Bus, Message
from npsloop_platform.consumer import EventConsumer, PermanentError, Publisher
from npsloop_schemas import Event, FeedbackReceivedV1, Topics, customer_key

from .config import ClassifierSettings
from .handlers import classify
from .sentiment import SentimentModel


def build_consumer(settings: ClassifierSettings, bus: Bus, sentiment: SentimentModel) -> EventConsumer:
    async def handle(event: Event, msg: Message, publisher: Publisher) -> None:
        if not isinstance(event, FeedbackReceivedV1):
            raise PermanentError(f"{event.type_tag} does not belong on {Topics.FEEDBACK_RECEIVED}")
        out = classify(event, sentiment, settings.source_name)
        key = customer_key(event.tenant_id, event.payload.customer_id, event.event_id)
        await publisher.publish(out, key=key)

    return EventConsumer(bus, [Topics.FEEDBACK_RECEIVED], settings.group_id, handle)
