"""Actions' domain logic against a fake repository (no database)."""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from npsloop_actions.handlers import handle_classified, handle_status
from npsloop_actions.ports import CaseChange
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
    customer_key,
    derive_id,
)


class FakeRepo:
    """The ActionsRepository port in memory: an inbox, feedback, cases, a timeline, an outbox."""

    def __init__(self) -> None:
        self.inbox: set[uuid.UUID] = set()
        self.feedback: list[uuid.UUID] = []
        self.cases: dict[uuid.UUID, str] = {}
        self.timeline: list[tuple[uuid.UUID, str]] = []
        self.outbox: list[tuple[Envelope, str]] = []

    async def claim_inbox(self, events: Sequence[Envelope]) -> set[uuid.UUID]:
        fresh = {e.event_id for e in events} - self.inbox
        self.inbox |= fresh
        return fresh

    def add_feedback(self, event: FeedbackClassifiedV1, customer_key: str) -> None:
        self.feedback.append(event.payload.feedback_event_id)

    def open_case(self, case_id: uuid.UUID, event: FeedbackClassifiedV1, customer_key: str, reason: str) -> None:
        self.cases[case_id] = "open"
        self.timeline.append((case_id, "opened"))

    async def mark_cases(self, changes: Sequence[CaseChange]) -> set[uuid.UUID]:
        known = set()
        for c in changes:
            if c.case_id in self.cases:
                self.cases[c.case_id] = c.status
                self.timeline.append((c.case_id, c.entry))
                known.add(c.case_id)
        return known

    def add_outbox(self, event: Envelope, key: str) -> None:
        self.outbox.append((event, key))


def keyed(*events: FeedbackClassifiedV1) -> list[tuple[FeedbackClassifiedV1, str]]:
    """As the consumer edge hands them over: each event with its customer key."""
    return [(e, customer_key(e.tenant_id, e.payload.feedback.customer_id, e.payload.feedback_event_id)) for e in events]


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
    await handle_classified(keyed(event), repo, "actions")
    await handle_classified(keyed(event), repo, "actions")  # redelivery
    assert list(repo.cases) == [derive_id("case", event.payload.feedback_event_id)]
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
    await handle_classified(keyed(classified(10, email="a@b.co")), repo, "actions")
    assert not repo.cases
    ((note, _),) = repo.outbox
    assert isinstance(note, NotificationRequestedV1) and note.payload.kind is NotificationKind.THANK_YOU_EMAIL
    assert note.payload.recipient.email == "a@b.co"


async def test_no_email_passive_and_no_consent_contact_nobody() -> None:
    repo = FakeRepo()
    await handle_classified(keyed(classified(9, email=None)), repo, "actions")
    await handle_classified(keyed(classified(7, email="p@b.co")), repo, "actions")
    assert repo.outbox == [] and len(repo.feedback) == 2
    await handle_classified(keyed(classified(1, consent=False)), repo, "actions")
    assert len(repo.cases) == 1
    assert [type(e).__name__ for e, _ in repo.outbox] == ["CaseOpenedV1"]  # a case, but no call


async def test_anonymous_feedback_is_keyed_by_its_event() -> None:
    repo, event = FakeRepo(), classified(2, customer=None)
    await handle_classified(keyed(event), repo, "actions")
    assert repo.outbox[0][1] == f"acme:anon:{event.payload.feedback_event_id}"


async def test_sent_call_task_marks_the_case_contacted() -> None:
    repo, event = FakeRepo(), classified(2)
    await handle_classified(keyed(event), repo, "actions")
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
    await handle_status([(status, "acme:c-1")], repo, "actions")
    await handle_status([(status, "acme:c-1")], repo, "actions")  # redelivery
    assert repo.cases[case_id] == "contacted"
    assert repo.timeline == [(case_id, "opened"), (case_id, "delivery_sent")]
    updated = repo.outbox[-1][0]
    assert isinstance(updated, CaseUpdatedV1) and updated.payload.status == "contacted"
    assert len(repo.outbox) == 3


def status_for(case_id: uuid.UUID, status: DeliveryStatus = DeliveryStatus.SENT) -> NotificationStatusV1:
    return NotificationStatusV1(
        event_id=uuid.uuid4(),
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        tenant_id="acme",
        source="n",
        correlation_id=uuid.uuid4(),
        payload=NotificationStatusPayloadV1(
            delivery_id=uuid.uuid4(),
            kind=NotificationKind.CALL_TASK,
            status=status,
            attempts=1,
            case_id=case_id,
            feedback_event_id=uuid.uuid4(),
        ),
    )


async def test_a_mixed_batch_is_followed_up_in_input_order_and_repeats_drop_out() -> None:
    repo = FakeRepo()
    promoter, passive = classified(10, email="a@b.co", customer="c-p"), classified(8, customer="c-s")
    detractor, silent = classified(2, customer="c-d"), classified(0, consent=False, customer="c-x")
    earlier = classified(9, email="e@b.co", customer="c-e")
    await handle_classified(keyed(earlier), repo, "actions")
    batch = keyed(promoter, passive, detractor, detractor, silent, earlier)  # a repeat and a redelivery
    await handle_classified(batch, repo, "actions")
    assert repo.feedback[1:] == [e.payload.feedback_event_id for e in (promoter, passive, detractor, silent)]
    assert len(repo.cases) == 2
    kinds = [(type(e).__name__, k) for e, k in repo.outbox[1:]]
    assert kinds == [
        ("NotificationRequestedV1", "acme:c-p"),
        ("CaseOpenedV1", "acme:c-d"),
        ("NotificationRequestedV1", "acme:c-d"),
        ("CaseOpenedV1", "acme:c-x"),
    ]


async def test_statuses_for_known_and_unknown_cases() -> None:
    repo, event = FakeRepo(), classified(2)
    await handle_classified(keyed(event), repo, "actions")
    case_id = next(iter(repo.cases))
    unknown = uuid.uuid4()
    await handle_status(
        [(status_for(unknown), "acme:c-9"), (status_for(case_id, DeliveryStatus.FAILED), "acme:c-1")], repo, "actions"
    )
    assert repo.timeline == [(case_id, "opened"), (case_id, "delivery_failed")]
    assert repo.cases[case_id] == "open" and unknown not in repo.cases
    updated, key = repo.outbox[-1]
    assert isinstance(updated, CaseUpdatedV1) and updated.payload.case_id == case_id and key == "acme:c-1"
    assert sum(isinstance(e, CaseUpdatedV1) for e, _ in repo.outbox) == 1
