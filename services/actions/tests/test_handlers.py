"""Actions' domain logic against a fake repository (no database)."""

import uuid
from datetime import UTC, datetime

from npsloop_actions.handlers import derived_id, handle_classified, handle_status
from npsloop_schemas import (
    Band,
    CaseOpenedV1,
    CaseUpdatedV1,
    Contact,
    DeliveryStatus,
    Envelope,
    FeedbackClassifiedPayloadV1,
    FeedbackClassifiedV1,
    FeedbackReceivedPayloadV1,
    NotificationKind,
    NotificationRequestedV1,
    NotificationStatusPayloadV1,
    NotificationStatusV1,
    band_for,
)


class FakeRepo:
    def __init__(self) -> None:
        self.inbox: set[uuid.UUID] = set()
        self.feedback: list[uuid.UUID] = []
        self.cases: dict[uuid.UUID, str] = {}
        self.timeline: list[tuple[uuid.UUID, str]] = []
        self.outbox: list[tuple[Envelope, str]] = []

    async def claim_inbox(self, event_id: uuid.UUID, event_type: str) -> bool:
        if event_id in self.inbox:
            return False
        self.inbox.add(event_id)
        return True

    async def add_feedback(self, event: FeedbackClassifiedV1, customer_key: str) -> None:
        self.feedback.append(event.payload.feedback_event_id)

    async def open_case(self, case_id: uuid.UUID, event: FeedbackClassifiedV1, customer_key: str, reason: str) -> None:
        self.cases[case_id] = "open"
        self.timeline.append((case_id, "opened"))

    async def mark_case(self, case_id: uuid.UUID, status: str, entry: str, detail: dict[str, str]) -> bool:
        if case_id not in self.cases:
            return False
        self.cases[case_id] = status
        self.timeline.append((case_id, entry))
        return True

    async def add_outbox(self, event: Envelope, key: str) -> None:
        self.outbox.append((event, key))


def classified(
    score: int, email: str | None = None, consent: bool = True, customer: str | None = "c-1"
) -> FeedbackClassifiedV1:
    fid = uuid.uuid4()
    fb = FeedbackReceivedPayloadV1(
        score=score,
        channel="web",
        customer_id=customer,
        contact=Contact(email=email, phone="+4915112345678"),
        consent_to_contact=consent,
    )
    return FeedbackClassifiedV1(
        event_id=uuid.uuid4(),
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        tenant_id="acme",
        source="t",
        correlation_id=fid,
        causation_id=fid,
        payload=FeedbackClassifiedPayloadV1(feedback_event_id=fid, feedback=fb, band=band_for(score)),
    )


async def test_detractor_opens_one_case_and_requests_a_call_in_one_unit_of_work() -> None:
    repo, event = FakeRepo(), classified(3)
    await handle_classified(event, repo, "actions")
    await handle_classified(event, repo, "actions")  # redelivery
    assert list(repo.cases) == [derived_id("case", event.payload.feedback_event_id)]
    kinds = [type(e).__name__ for e, _ in repo.outbox]
    assert kinds == ["CaseOpenedV1", "NotificationRequestedV1"]
    opened, call = repo.outbox[0][0], repo.outbox[1][0]
    assert isinstance(opened, CaseOpenedV1) and opened.payload.segment is Band.DETRACTOR
    assert isinstance(call, NotificationRequestedV1) and call.payload.kind is NotificationKind.CALL_TASK
    assert call.payload.case_id == opened.payload.case_id
    assert {key for _, key in repo.outbox} == {"acme:c-1"}
    assert repo.feedback == [event.payload.feedback_event_id]


async def test_promoter_with_email_gets_a_thank_you_and_no_case() -> None:
    repo = FakeRepo()
    await handle_classified(classified(10, email="a@b.co"), repo, "actions")
    assert not repo.cases
    ((note, _),) = repo.outbox
    assert isinstance(note, NotificationRequestedV1) and note.payload.kind is NotificationKind.THANK_YOU_EMAIL
    assert note.payload.recipient.email == "a@b.co"


async def test_no_email_passive_and_no_consent_contact_nobody() -> None:
    repo = FakeRepo()
    await handle_classified(classified(9, email=None), repo, "actions")
    await handle_classified(classified(7, email="p@b.co"), repo, "actions")
    assert repo.outbox == [] and len(repo.feedback) == 2
    await handle_classified(classified(1, consent=False), repo, "actions")
    assert len(repo.cases) == 1
    assert [type(e).__name__ for e, _ in repo.outbox] == ["CaseOpenedV1"]  # a case, but no call


async def test_anonymous_feedback_is_keyed_by_its_event() -> None:
    repo, event = FakeRepo(), classified(2, customer=None)
    await handle_classified(event, repo, "actions")
    assert repo.outbox[0][1] == f"acme:anon:{event.payload.feedback_event_id}"


async def test_sent_call_task_marks_the_case_contacted() -> None:
    repo, event = FakeRepo(), classified(2)
    await handle_classified(event, repo, "actions")
    case_id = next(iter(repo.cases))
    status = NotificationStatusV1(
        event_id=uuid.uuid4(),
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        tenant_id="acme",
        source="n",
        correlation_id=event.correlation_id,
        payload=NotificationStatusPayloadV1(
            delivery_id=uuid.uuid4(),
            kind=NotificationKind.CALL_TASK,
            status=DeliveryStatus.SENT,
            attempts=1,
            case_id=case_id,
            feedback_event_id=event.payload.feedback_event_id,
        ),
    )
    await handle_status(status, repo, "actions", "acme:c-1")
    await handle_status(status, repo, "actions", "acme:c-1")
    assert repo.cases[case_id] == "contacted"
    assert repo.timeline == [(case_id, "opened"), (case_id, "delivery_sent")]
    updated = repo.outbox[-1][0]
    assert isinstance(updated, CaseUpdatedV1) and updated.payload.status == "contacted"
    assert len(repo.outbox) == 3
