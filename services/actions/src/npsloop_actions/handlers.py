"""Domain logic of actions: what each answer sets in motion under the policy. No Kafka, no SQL.

Handlers take a batch of `(event, customer key)` in consumption order. The whole batch runs in
one unit of work: inbox rows, feedback, journeys, case changes and outbox rows commit together.
A customer has at most one open case: new feedback joins it instead of opening another.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from npsloop_schemas import (
    Band,
    CaseChange,
    CaseKind,
    CaseOpenedPayloadV1,
    CaseOpenedV1,
    CaseStatus,
    CaseUpdatedPayloadV1,
    CaseUpdatedV1,
    Envelope,
    FeedbackClassifiedV1,
    FeedbackReclassifiedV1,
    NotificationKind,
    NotificationRequestedPayloadV1,
    NotificationRequestedV1,
    derive_id,
)

from .answers import Answer, Journey, answer_of, as_stored, feedback_row, late_answer_of
from .context import Context
from .policy import Facts, matching, priority_of
from .ports import ActionsRepository, Customer, OpenCase

__all__ = ["Context", "first_time", "handle_feedback"]

E = TypeVar("E", bound=Envelope)
RANK = {Band.DETRACTOR: 0, Band.PASSIVE: 1, Band.PROMOTER: 2}
CASE_BOUND = {NotificationKind.CALL_TASK, NotificationKind.ACKNOWLEDGEMENT_EMAIL}
EMAIL_KINDS = {
    NotificationKind.THANK_YOU_EMAIL,
    NotificationKind.NURTURE_EMAIL,
    NotificationKind.ACKNOWLEDGEMENT_EMAIL,
    NotificationKind.REVIEW_INVITATION,
}


async def first_time(items: Sequence[tuple[E, str]], repo: ActionsRepository) -> list[tuple[E, str]]:
    """The items whose event this service has never consumed: redeliveries and repeats drop out."""
    fresh = await repo.claim_inbox([event for event, _ in items])
    out = []
    for event, key in items:
        if event.event_id in fresh:
            fresh.discard(event.event_id)  # a second copy in the same batch is a repeat too
            out.append((event, key))
    return out


class Batch:
    """One batch of answers worked against the customers' journeys, in order."""

    def __init__(self, repo: ActionsRepository, ctx: Context, customers: dict[str, Customer]) -> None:
        self.repo, self.ctx, self.customers = repo, ctx, customers
        self.now = ctx.clock()

    # -- events ---------------------------------------------------------------------------
    def _updated(self, a: Answer, case: OpenCase, change: CaseChange, note: str, salt: str = "") -> None:
        payload = CaseUpdatedPayloadV1(
            case_id=case.case_id,
            status=case.status,
            note=note,
            change=change,
            store_id=case.store_id,
            customer_key=a.key,
            actor=self.ctx.source,
            priority=case.priority,
            feedback_event_id=a.feedback_event_id,
        )
        event_id = derive_id(f"case.updated:{change}{salt}", a.cause.event_id)
        event = CaseUpdatedV1.following(
            a.cause, event_id=event_id, source=self.ctx.source, payload=payload, occurred_at=self.now
        )
        self.repo.add_outbox(event, a.key)

    def _notify(self, a: Answer, kind: NotificationKind, case_id: uuid.UUID | None) -> None:
        event = NotificationRequestedV1.following(
            a.cause,
            event_id=derive_id(f"notification:{kind}", a.feedback_event_id),
            source=self.ctx.source,
            occurred_at=self.now,
            payload=NotificationRequestedPayloadV1(
                delivery_id=derive_id(f"delivery:{kind}", a.feedback_event_id),
                kind=kind,
                customer_key=a.key,
                recipient=a.contact,
                feedback_event_id=a.feedback_event_id,
                case_id=case_id,
                score=a.score,
                store_id=a.store_id,
                comment=a.comment,
                locale=a.locale,
                channel=a.channel,
                band=a.band,
            ),
        )
        self.repo.add_outbox(event, a.key)
        a.requested.add(str(kind))

    # -- the journey ----------------------------------------------------------------------
    def _customer(self, a: Answer) -> Customer:
        c = self.customers.get(a.key)
        if c is None:
            c = self.customers[a.key] = Customer(a.key, a.tenant_id, None)
        return c

    def _journey(self, c: Customer, a: Answer) -> Journey:
        """Move the customer to this answer's band (a slip marks them at risk); return them before it."""
        if c.anonymous:
            return Journey()
        journey = Journey(c.current_band, c.was_detractor, c.answers)
        before = c.current_band
        if before is not None and RANK[a.band] < RANK[before] and not c.at_risk:
            c.at_risk, c.at_risk_since = True, self.now  # a slip
        if a.band is Band.PROMOTER:
            if c.was_detractor and not c.recovered:
                c.recovered, c.recovered_at = True, self.now  # a former detractor now answers 9-10
            c.at_risk, c.at_risk_since = False, None
        c.previous_band, c.current_band, c.last_score = before, a.band, a.score
        c.was_detractor = c.was_detractor or a.band is Band.DETRACTOR
        c.answers += 1
        c.last_store_id = a.store_id or c.last_store_id
        c.first_seen_at = c.first_seen_at or self.now
        c.last_seen_at, c.changed = self.now, True
        return journey

    # -- one answer -----------------------------------------------------------------------
    def apply(self, a: Answer, c: Customer, before: Journey, fresh: bool) -> None:
        """Run the rules for `a` (fresh: a new answer; else a late comment on one we have)."""
        facts = a.facts(c, before)
        outcome = matching(self.ctx.policy, facts)
        case_id = a.case_id
        case = c.open_case if c.open_case and (case_id is None or c.open_case.case_id == case_id) else None
        allow_case_bound = False
        if case is not None and (fresh or case_id is None):
            # One open case per customer: this answer joins it.
            allow_case_bound = self._join(a, case, outcome.case, facts)
            case_id = case.case_id
        elif case is not None:
            allow_case_bound = self._refresh(a, case, outcome.case, facts)
        elif a.own_case is not None:  # its case is resolved or closed: updated, never reopened here
            self._refresh(a, a.own_case, None, facts)
        elif outcome.case is not None and case_id is None:
            case = self._open(a, c, outcome.case, facts)
            case_id, allow_case_bound = case.case_id, True
        if case_id is not None and case_id != a.case_id:
            a.case_id = case_id
        for kind in outcome.notify:
            if str(kind) in a.requested or not a.may_contact:
                continue
            if kind in CASE_BOUND and not (allow_case_bound and case_id is not None):
                continue
            if kind in EMAIL_KINDS and not a.contact.email:
                continue
            self._notify(a, kind, case_id if kind in CASE_BOUND else None)
        new_rules = [r for r in outcome.rules if r not in a.rules_before]
        delight = [r for r in self.ctx.policy.rules if r.id in new_rules and r.surprise_and_delight]
        if delight and not c.anonymous:
            c.surprise_set_now, c.surprise_set_at, c.changed = True, self.now, True
            c.surprise_reason = f"{a.band} {a.score}/10 ({delight[0].id}): ask what would make it a 10"
        a.rules_before |= set(outcome.rules)

    def _open(self, a: Answer, c: Customer, kind: CaseKind, facts: Facts) -> OpenCase:
        case_id = derive_id("case", a.feedback_event_id)
        priority = priority_of(self.ctx.policy, kind, facts)
        sla = self.ctx.sla(a.tenant_id, a.store_id, kind, self.now)
        reason = f"{a.band} (score {a.score})" + (f": {', '.join(a.themes)}" if a.themes else "")
        self.repo.open_case(
            {
                "case_id": case_id,
                "tenant_id": a.tenant_id,
                "feedback_event_id": a.feedback_event_id,
                "customer_key": a.key,
                "segment": str(a.band),
                "status": str(CaseStatus.OPEN),
                "reason": reason,
                "store_id": a.store_id,
                "opened_at": self.now,
                "updated_at": self.now,
                "kind": str(kind),
                "priority": priority,
                "themes": a.themes,
                "flags": a.flags,
                **sla,
            }
        )
        self.repo.add_timeline(case_id, "opened", {"reason": reason, "kind": str(kind), "priority": priority})
        self.repo.add_outbox(
            CaseOpenedV1.following(
                a.cause,
                event_id=derive_id("case.opened", case_id),
                source=self.ctx.source,
                occurred_at=self.now,
                payload=CaseOpenedPayloadV1(
                    case_id=case_id,
                    feedback_event_id=a.feedback_event_id,
                    customer_key=a.key,
                    segment=a.band,
                    score=a.score,
                    store_id=a.store_id,
                    channel=a.channel,
                    comment=a.comment,
                    reason=reason,
                    kind=kind,
                    priority=priority,
                    sla_due_at=sla["sla_due_at"],
                    themes=a.themes,
                    flags=a.flags,
                ),
            ),
            a.key,
        )
        case = OpenCase(case_id, kind, CaseStatus.OPEN, a.band, priority, a.store_id, list(a.themes), list(a.flags))
        c.open_case = case
        return case

    def _merge(self, a: Answer, case: OpenCase, wanted: CaseKind | None, facts: Facts) -> tuple[dict[str, Any], bool]:
        """Fold the answer into the case: priority, themes, flags; a callback need upgrades a nurture case."""
        values: dict[str, Any] = {"updated_at": self.now}
        upgrade = wanted is CaseKind.CALLBACK and case.kind is CaseKind.NURTURE
        if upgrade:
            case.kind, case.segment = CaseKind.CALLBACK, a.band
            values |= {"kind": str(case.kind), "segment": str(a.band)}
            values |= self.ctx.sla(a.tenant_id, case.store_id, CaseKind.CALLBACK, self.now)
        priority = max(case.priority, priority_of(self.ctx.policy, case.kind, facts))
        case.priority = priority
        case.themes = list(dict.fromkeys([*case.themes, *a.themes]))
        case.flags = list(dict.fromkeys([*case.flags, *a.flags]))
        values |= {"priority": priority, "themes": case.themes, "flags": case.flags}
        return values, upgrade

    def _join(self, a: Answer, case: OpenCase, wanted: CaseKind | None, facts: Facts) -> bool:
        values, upgrade = self._merge(a, case, wanted, facts)
        self.repo.update_case(case.case_id, values)
        detail = {"feedback_event_id": str(a.feedback_event_id), "score": a.score, "band": str(a.band)}
        self.repo.add_timeline(case.case_id, "feedback_attached", detail)
        self._updated(a, case, CaseChange.FEEDBACK_ATTACHED, f"new feedback {a.score}/10 joined the open case")
        if upgrade:
            self.repo.add_timeline(case.case_id, "priority_changed", {"kind": "callback", "priority": case.priority})
        return upgrade

    def _refresh(self, a: Answer, case: OpenCase, wanted: CaseKind | None, facts: Facts) -> bool:
        values, upgrade = self._merge(a, case, wanted, facts)
        self.repo.update_case(case.case_id, values)
        detail = {"feedback_event_id": str(a.feedback_event_id), "themes": a.themes, "flags": a.flags}
        self.repo.add_timeline(case.case_id, "feedback_updated", detail)
        self._updated(a, case, CaseChange.FEEDBACK_UPDATED, "a late comment changed the feedback")
        return upgrade


async def handle_feedback(
    items: Sequence[tuple[FeedbackClassifiedV1 | FeedbackReclassifiedV1, str]], repo: ActionsRepository, ctx: Context
) -> list[tuple[int, str]]:
    """Classified answers and late comments, in order. Returns (index, reason) of the items refused:
    a late comment on feedback we never stored (it is not claimed, so a replay can still land)."""
    indexed = {id(e): i for i, (e, _) in enumerate(items)}
    late_ids = [e.payload.feedback_event_id for e, _ in items if isinstance(e, FeedbackReclassifiedV1)]
    new_ids = {e.payload.feedback_event_id for e, _ in items if isinstance(e, FeedbackClassifiedV1)}
    stored = await repo.stored_feedback(late_ids) if late_ids else {}
    refused: list[tuple[int, str]] = []
    known: list[tuple[FeedbackClassifiedV1 | FeedbackReclassifiedV1, str]] = []
    for event, key in items:
        fid = event.payload.feedback_event_id
        if isinstance(event, FeedbackReclassifiedV1) and fid not in stored and fid not in new_ids:
            refused.append((indexed[id(event)], f"feedback.reclassified for unknown feedback {fid}: nothing to update"))
        else:
            known.append((event, key))
    fresh = await first_time(known, repo)
    if not fresh:
        return refused
    tenant_keys = list({key: (e.tenant_id, key, _customer_id(e, key)) for e, key in fresh}.values())
    batch = Batch(repo, ctx, await repo.customers(tenant_keys))
    answers: dict[uuid.UUID, Answer] = {}
    for event, key in fresh:
        if isinstance(event, FeedbackClassifiedV1):
            a = answer_of(event, key)
            c = batch._customer(a)
            batch.apply(a, c, batch._journey(c, a), fresh=True)
            repo.add_feedback(feedback_row(a, event) | _decided(a))
        else:
            fid = event.payload.feedback_event_id
            if fid in answers:  # its answer came in this very batch
                stored[fid] = as_stored(answers[fid])
            a = late_answer_of(event, stored[fid], key)
            c = batch._customer(a)
            batch.apply(a, c, Journey(c.previous_band, c.was_detractor, max(0, c.answers - 1)), fresh=False)
            p = event.payload
            repo.update_feedback(
                fid,
                {
                    "comment": a.comment,
                    "contact": a.contact.model_dump(mode="json", exclude_none=True) or None,
                    "consent_to_contact": a.consent,
                    "locale": a.locale,
                    "sentiment_label": str(p.sentiment.label) if p.sentiment else None,
                    "sentiment_compound": p.sentiment.compound if p.sentiment else None,
                    "themes": a.themes,
                    "flags": a.flags,
                    "theme_sentiments": [t.model_dump(mode="json") for t in p.theme_sentiments],
                    "language": p.language,
                    "updated_at": batch.now,
                }
                | _decided(a),
            )
        answers[a.feedback_event_id] = a
    for c in batch.customers.values():
        if c.changed and not c.anonymous:
            repo.save_customer(c)
    return refused


def _decided(a: Answer) -> dict[str, Any]:
    return {"case_id": a.case_id, "requested": sorted(a.requested), "rules": sorted(a.rules_before)}


def _customer_id(event: FeedbackClassifiedV1 | FeedbackReclassifiedV1, key: str) -> str | None:
    """The retailer's customer id; a late comment carries none, its key (`tenant:customer_id`) does."""
    if isinstance(event, FeedbackClassifiedV1):
        return event.payload.feedback.customer_id
    tenant, _, rest = key.partition(":")
    return None if tenant != event.tenant_id or not rest or rest.startswith("anon:") else rest
