import uuid
from datetime import UTC, datetime

import pytest

from npsloop_classifier.handlers import classified_event_id, classify
from npsloop_classifier.sentiment import Vader, label_for
from npsloop_schemas import Band, FeedbackReceivedPayloadV1, FeedbackReceivedV1, Sentiment, SentimentLabel


def received(score: int, comment: str | None = None, consent: bool = True) -> FeedbackReceivedV1:
    eid = uuid.uuid4()
    return FeedbackReceivedV1(
        event_id=eid,
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        tenant_id="acme",
        source="t",
        correlation_id=eid,
        payload=FeedbackReceivedPayloadV1(score=score, comment=comment, channel="pos", consent_to_contact=consent),
    )


def fixed(label: SentimentLabel, compound: float) -> object:
    return lambda text: Sentiment(label=label, compound=compound, model="fake")


@pytest.fixture(scope="module")
def vader() -> Vader:
    return Vader()


def test_band_lineage_and_themes(vader: Vader) -> None:
    event = received(2, "The cashier was rude and the queue took forever")
    out = classify(event, vader, "classifier")
    assert out.payload.band is Band.DETRACTOR
    assert out.event_id == classified_event_id(event.event_id) == classify(event, vader, "x").event_id
    assert out.causation_id == event.event_id and out.correlation_id == event.correlation_id
    assert out.payload.feedback == event.payload
    assert {"staff", "wait_time"} <= set(out.payload.themes)
    assert out.payload.sentiment is not None and out.payload.sentiment.label is SentimentLabel.NEGATIVE


def test_no_comment_means_no_sentiment(vader: Vader) -> None:
    out = classify(received(10), vader, "c")
    assert out.payload.band is Band.PROMOTER and out.payload.sentiment is None and out.payload.themes == []


def test_flags() -> None:
    neg = fixed(SentimentLabel.NEGATIVE, -0.8)
    assert "score_sentiment_mismatch" in classify(received(10, "meh"), neg, "c").payload.flags  # type: ignore[arg-type]
    assert "urgent" in classify(received(1, "I want a refund"), neg, "c").payload.flags  # type: ignore[arg-type]
    assert "no_contact" in classify(received(1, None, consent=False), neg, "c").payload.flags  # type: ignore[arg-type]


@pytest.mark.parametrize(("compound", "label"), [(0.05, "positive"), (0.0499, "neutral"), (-0.05, "negative")])
def test_vader_thresholds(compound: float, label: str) -> None:
    assert label_for(compound) == label
