"""Fixtures of the classifier tests: the default classifier and event factories."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from npsloop_classifier.handlers import Classifier
from npsloop_schemas import FeedbackReceivedPayloadV1, FeedbackReceivedV1, FeedbackUpdatedPayloadV1, FeedbackUpdatedV1


def _received(score: int, comment: str | None = None, consent: bool = True) -> FeedbackReceivedV1:
    eid = uuid.uuid4()
    return FeedbackReceivedV1(
        event_id=eid,
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        tenant_id="acme",
        source="t",
        correlation_id=eid,
        payload=FeedbackReceivedPayloadV1(score=score, comment=comment, channel="pos", consent_to_contact=consent),
    )


def _updated(original: FeedbackReceivedV1, comment: str | None, **extra: object) -> FeedbackUpdatedV1:
    eid = uuid.uuid4()
    fields = ["comment", *extra]
    return FeedbackUpdatedV1(
        event_id=eid,
        occurred_at=datetime(2026, 11, 1, 0, 5, tzinfo=UTC),
        tenant_id="acme",
        source="t",
        correlation_id=original.correlation_id,
        payload=FeedbackUpdatedPayloadV1.model_validate(
            {"feedback_event_id": original.event_id, "fields": fields, "comment": comment, **extra}
        ),
    )


Received = Callable[..., FeedbackReceivedV1]
Updated = Callable[..., FeedbackUpdatedV1]


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    """The default classifier (its models are loaded once per process and shared)."""
    return Classifier()


@pytest.fixture(scope="session")
def received() -> Received:
    """received(score, comment=None, consent=True): a feedback.received event."""
    return _received


@pytest.fixture(scope="session")
def updated() -> Updated:
    """updated(original, comment, **fields): a feedback.updated of `original`."""
    return _updated
