"""Events for the classifier tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from npsloop_schemas import FeedbackReceivedPayloadV1, FeedbackReceivedV1, FeedbackUpdatedPayloadV1, FeedbackUpdatedV1


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


def updated(original: FeedbackReceivedV1, comment: str | None, **extra: object) -> FeedbackUpdatedV1:
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
