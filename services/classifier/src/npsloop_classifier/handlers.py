"""Classification: pure domain logic, no Kafka. Output ids derive from the input's event_id,
so a redelivered input yields the very same output event and downstream dedupe holds."""

from __future__ import annotations

import re
import uuid

from npsloop_schemas import (
    Band,
    FeedbackClassifiedPayloadV1,
    FeedbackClassifiedV1,
    FeedbackReceivedV1,
    SentimentLabel,
    band_for,
    derive_id,
)

from .sentiment import SentimentModel

#: First, deliberately small theme lexicon; a later step replaces it with a measured model.
THEMES: dict[str, re.Pattern[str]] = {
    "staff": re.compile(r"\b(staff|cashier|employee|service|rude|friendly|helpful|manager)\b", re.I),
    "wait_time": re.compile(r"\b(wait(ed|ing)?|queue|line|slow|took forever)\b", re.I),
    "price": re.compile(r"\b(price[sd]?|expensive|cheap|cost|overpriced|discount)\b", re.I),
    "product": re.compile(r"\b(product|quality|broken|fresh|stock|size|item)\b", re.I),
    "cleanliness": re.compile(r"\b(clean|dirty|mess(y)?|smell(y)?)\b", re.I),
    "delivery": re.compile(r"\b(deliver(y|ed)?|shipping|package|parcel|late)\b", re.I),
    "checkout": re.compile(r"\b(checkout|payment|card|till|register|app|website)\b", re.I),
}
URGENT = re.compile(r"\b(refund|lawyer|sue|complain(t)?|never again|cancel|fraud|unsafe)\b", re.I)


def classified_event_id(feedback_event_id: uuid.UUID) -> uuid.UUID:
    return derive_id("feedback.classified", feedback_event_id)


def classify(event: FeedbackReceivedV1, sentiment: SentimentModel, source: str) -> FeedbackClassifiedV1:
    payload = event.payload
    band = band_for(payload.score)
    comment = (payload.comment or "").strip()
    mood = sentiment(comment) if comment else None
    themes = [name for name, pattern in THEMES.items() if pattern.search(comment)]
    flags: list[str] = []
    if comment and URGENT.search(comment):
        flags.append("urgent")
    if mood is not None:
        if band is Band.PROMOTER and mood.label is SentimentLabel.NEGATIVE:
            flags.append("score_sentiment_mismatch")
        if band is Band.DETRACTOR and mood.label is SentimentLabel.POSITIVE:
            flags.append("score_sentiment_mismatch")
    if not payload.consent_to_contact:
        flags.append("no_contact")
    return FeedbackClassifiedV1.following(
        event,
        event_id=classified_event_id(event.event_id),
        source=source,
        occurred_at=event.occurred_at,
        payload=FeedbackClassifiedPayloadV1(
            feedback_event_id=event.event_id,
            feedback=payload,
            band=band,
            sentiment=mood,
            themes=themes,
            flags=flags,
        ),
    )
