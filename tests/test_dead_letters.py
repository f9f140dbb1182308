"""Poison messages go to `<topic>.dlq.<group>` with their reason; the partition keeps moving."""

from __future__ import annotations

import json

from npsloop_classifier.config import ClassifierSettings
from npsloop_classifier.consumer import build_consumer
from npsloop_classifier.sentiment import Vader
from npsloop_platform.bus import Bus
from npsloop_platform.testing.helpers import feedback_event_json, read_topic
from npsloop_schemas import FeedbackClassifiedV1, Topics, parse_event


def envelope(score: object) -> bytes:
    return feedback_event_json(score, comment="Great help!")


async def test_poison_goes_to_dlq_and_the_next_good_message_is_processed(bus: Bus) -> None:
    # All three on one key, so one partition: the good message sits *behind* the poison.
    key = "acme:c-7"
    await bus.publish(Topics.FEEDBACK_RECEIVED, b"{not json", key=key, headers=[("trace-id", b"t-1")])
    await bus.publish(Topics.FEEDBACK_RECEIVED, envelope(42), key=key, headers=[("trace-id", b"t-2")])
    good = envelope(9)
    await bus.publish(Topics.FEEDBACK_RECEIVED, good, key=key)

    consumer = build_consumer(ClassifierSettings(group_id="classifier"), bus, Vader())
    await consumer.start()
    try:
        classified = await read_topic(bus, Topics.FEEDBACK_CLASSIFIED, 1)
        dead = await read_topic(bus, Topics.dlq(Topics.FEEDBACK_RECEIVED, "classifier"), 2)
    finally:
        await consumer.stop()

    assert len(classified) == 1
    out = parse_event(classified[0].value or b"")
    assert isinstance(out, FeedbackClassifiedV1)
    assert out.payload.feedback_event_id == parse_event(good).event_id
    assert out.payload.sentiment is not None and out.payload.sentiment.label == "positive"

    assert [m.value for m in dead] == [b"{not json", envelope_value(dead[1].value)]
    reasons = [m.header("npsloop-dlq-reason") or b"" for m in dead]
    assert b"Invalid JSON" in reasons[0]
    assert b"payload.score" in reasons[1] and b"less than or equal to 10" in reasons[1]
    assert [m.header("trace-id") for m in dead] == [b"t-1", b"t-2"]  # original headers kept
    assert all(m.key == key.encode() for m in dead)
    assert dead[0].header("npsloop-dlq-source") is not None
    assert consumer.stats.dead_lettered == 2 and consumer.stats.handled == 1


def envelope_value(value: bytes | None) -> bytes | None:
    """The second DLQ message is the original bytes, byte for byte."""
    assert value is not None and json.loads(value)["payload"]["score"] == 42
    return value
