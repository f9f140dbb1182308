"""One answer as the rules see it: from a classified event, or a stored feedback plus a late comment."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from npsloop_schemas import (
    Band,
    Channel,
    Contact,
    Envelope,
    FeedbackClassifiedV1,
    FeedbackReclassifiedV1,
    Sentiment,
    SentimentLabel,
    ThemeSentiment,
)

from .policy import Facts
from .ports import Customer, OpenCase, StoredFeedback


@dataclass
class Answer:
    """One answer as the rules see it, from a classified event or a stored feedback plus a late comment."""

    cause: Envelope
    feedback_event_id: uuid.UUID
    key: str
    score: int
    band: Band
    store_id: str | None
    channel: Channel
    comment: str | None
    contact: Contact
    consent: bool
    locale: str | None
    themes: list[str]
    flags: list[str]
    sentiment: SentimentLabel | None
    compound: float | None
    theme_sentiments: list[tuple[str, SentimentLabel]]
    requested: set[str] = field(default_factory=set)
    rules_before: set[str] = field(default_factory=set)
    case_id: uuid.UUID | None = None
    own_case: OpenCase | None = None  # a late comment's: the case its answer opened or joined

    @property
    def tenant_id(self) -> str:
        return self.cause.tenant_id

    @property
    def may_contact(self) -> bool:
        return self.consent and "no_contact" not in self.flags

    def facts(self, c: Customer, before: Journey) -> Facts:
        return Facts(
            band=self.band,
            score=self.score,
            store_id=self.store_id,
            channel=self.channel,
            themes=frozenset(self.themes),
            flags=frozenset(self.flags),
            sentiment=self.sentiment,
            compound=self.compound,
            theme_sentiments=tuple(self.theme_sentiments),
            at_risk=c.at_risk,
            recovered=c.recovered,
            was_detractor=before.was_detractor,
            previous_band=before.band,
            answers_before=before.answers,
        )


@dataclass(frozen=True)
class Journey:
    """The customer as they were before this answer."""

    band: Band | None = None
    was_detractor: bool = False
    answers: int = 0


def answer_of(event: FeedbackClassifiedV1, key: str) -> Answer:
    p, fb = event.payload, event.payload.feedback
    return Answer(
        cause=event,
        feedback_event_id=p.feedback_event_id,
        key=key,
        score=fb.score,
        band=p.band,
        store_id=fb.store_id,
        channel=fb.channel,
        comment=fb.comment,
        contact=fb.contact or Contact(),
        consent=fb.consent_to_contact,
        locale=fb.locale,
        themes=list(p.themes),
        flags=list(p.flags),
        sentiment=p.sentiment.label if p.sentiment else None,
        compound=p.sentiment.compound if p.sentiment else None,
        theme_sentiments=_theme_sentiments(p.theme_sentiments, p.themes, p.sentiment),
    )


def _theme_sentiments(
    given: Sequence[ThemeSentiment], themes: Sequence[str], sentiment: Sentiment | None
) -> list[tuple[str, SentimentLabel]]:
    """Per-theme sentiment; from a classifier that gives none, each theme takes the comment's."""
    if given or sentiment is None:
        return [(t.theme, t.label) for t in given]
    return [(t, sentiment.label) for t in themes]


def late_answer_of(event: FeedbackReclassifiedV1, stored: StoredFeedback, key: str) -> Answer:
    p, up = event.payload, event.payload.update
    contact = Contact.model_validate(stored.contact or {})
    return Answer(
        cause=event,
        feedback_event_id=stored.feedback_event_id,
        key=key,
        score=stored.score,
        band=stored.band,
        store_id=stored.store_id,
        channel=stored.channel,
        comment=up.comment if "comment" in up.fields else stored.comment,
        contact=(up.contact or Contact()) if "contact" in up.fields else contact,
        consent=bool(up.consent_to_contact) if "consent_to_contact" in up.fields else stored.consent_to_contact,
        locale=up.locale if "locale" in up.fields else stored.locale,
        themes=list(p.themes),
        flags=list(p.flags),
        sentiment=p.sentiment.label if p.sentiment else None,
        compound=p.sentiment.compound if p.sentiment else None,
        theme_sentiments=_theme_sentiments(p.theme_sentiments, p.themes, p.sentiment),
        requested=set(stored.requested),
        rules_before=set(stored.rules),
        case_id=stored.case_id,
        own_case=stored.case,
    )


def feedback_row(a: Answer, event: FeedbackClassifiedV1) -> dict[str, Any]:
    p = event.payload
    return {
        "feedback_event_id": a.feedback_event_id,
        "tenant_id": a.tenant_id,
        "customer_key": a.key,
        "score": a.score,
        "band": str(a.band),
        "sentiment_label": str(p.sentiment.label) if p.sentiment else None,
        "sentiment_compound": p.sentiment.compound if p.sentiment else None,
        "themes": a.themes,
        "flags": a.flags,
        "comment": a.comment,
        "store_id": a.store_id,
        "channel": str(a.channel),
        "occurred_at": event.occurred_at,
        "theme_sentiments": [t.model_dump(mode="json") for t in p.theme_sentiments],
        "language": p.language,
        "locale": a.locale,
        "contact": a.contact.model_dump(mode="json", exclude_none=True) or None,
        "consent_to_contact": a.consent,
    }


def as_stored(a: Answer) -> StoredFeedback:
    return StoredFeedback(
        feedback_event_id=a.feedback_event_id,
        tenant_id=a.tenant_id,
        customer_key=a.key,
        score=a.score,
        band=a.band,
        store_id=a.store_id,
        channel=a.channel,
        comment=a.comment,
        contact=a.contact.model_dump(mode="json", exclude_none=True),
        consent_to_contact=a.consent,
        locale=a.locale,
        case_id=a.case_id,
        requested=sorted(a.requested),
        rules=sorted(a.rules_before),
        themes=a.themes,
        flags=a.flags,
    )
