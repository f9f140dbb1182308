"""The classifier's consumer on the in-memory bus and on real Kafka: feedback.received and
feedback.updated in, feedback.classified and feedback.reclassified out on the same key; bad
input classified, poison dead-lettered, the partition moving."""

from __future__ import annotations

from collections.abc import Callable

from npsloop_classifier.config import ClassifierSettings
from npsloop_classifier.consumer import build_consumer
from npsloop_classifier.handlers import Classifier, classified_event_id, reclassified_event_id
from npsloop_platform.bus import Bus
from npsloop_platform.testing.helpers import read_topic
from npsloop_schemas import (
    FeedbackClassifiedV1,
    FeedbackReceivedV1,
    FeedbackReclassifiedV1,
    FeedbackUpdatedV1,
    Topics,
    parse_event,
    serialize_event,
)

BAD = ["", "👍👍", "x" * 5000, "<p>Great <b>staff</b></p>", "Great staff, aber zu teuer", "Очень плохо", "很好", "سيء"]


async def test_received_and_updated_are_classified_on_their_key(bus: Bus, classifier: Classifier, received: Callable[..., FeedbackReceivedV1], updated: Callable[..., FeedbackUpdatedV1]) -> None:
    key = "acme:c-9"
    first = received(2, "Rude staff and a long queue")
    late = updated(first, "Actually the manager called me back, mail me at ann@example.com")
    bad = [received(5, text) for text in BAD]
    await bus.publish(Topics.FEEDBACK_RECEIVED, serialize_event(first), key=key)
    await bus.publish(Topics.FEEDBACK_RECEIVED, b'{"event_type": "feedback.updated"}', key=key)  # poison
    await bus.publish(Topics.FEEDBACK_RECEIVED, serialize_event(late), key=key)
    for event in bad:
        await bus.publish(Topics.FEEDBACK_RECEIVED, serialize_event(event), key=key)

    consumer = build_consumer(ClassifierSettings(group_id="classifier"), bus, classifier)
    await consumer.start()
    try:
        out = await read_topic(bus, Topics.FEEDBACK_CLASSIFIED, 2 + len(bad))
        dead = await read_topic(bus, Topics.dlq(Topics.FEEDBACK_RECEIVED, "classifier"), 1)
    finally:
        await consumer.stop()

    assert all(m.key == key.encode() for m in out)
    events = [parse_event(m.value or b"") for m in out]
    assert isinstance(events[0], FeedbackClassifiedV1) and events[0].event_id == classified_event_id(first.event_id)
    # A batch is handled per event type, received first: a reclassified never overtakes its original.
    (again,) = [e for e in events if isinstance(e, FeedbackReclassifiedV1)]
    assert again.event_id == reclassified_event_id(late.event_id)
    assert again.payload.feedback_event_id == first.event_id
    assert again.payload.update.comment == "Actually the manager called me back, mail me at [email]"
    assert "contains_pii" in again.payload.flags and again.payload.language == "en"
    classified = [e for e in events[1:] if isinstance(e, FeedbackClassifiedV1)]
    assert [e.payload.feedback_event_id for e in classified] == [e.event_id for e in bad]
    assert b"validation failed" in (dead[0].header("npsloop-dlq-reason") or b"")
    assert consumer.stats.handled == 2 + len(bad) and consumer.stats.dead_lettered == 1
