"""Classification: pure domain logic, no Kafka. Output ids derive from the input's event_id,
so a redelivered input yields the very same output event and downstream dedupe holds.

PII: the published `feedback.comment` (and `update.comment` of a reclassified event) is the
redacted comment, flagged `contains_pii`. The original stays only on `feedback.received.v1`
(Kafka retention), which ingest wrote; the contact fields a follow-up needs (`contact.email`,
`contact.phone`) are carried as they are.
"""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass, field

from npsloop_schemas import (
    FeedbackClassifiedPayloadV1,
    FeedbackClassifiedV1,
    FeedbackReceivedV1,
    FeedbackReclassifiedPayloadV1,
    FeedbackReclassifiedV1,
    FeedbackUpdatedV1,
    Sentiment,
    ThemeSentiment,
    band_for,
    derive_id,
)

from . import flags as F
from .language import LanguageDetector, default_detector
from .sentiment import SentimentModel, default_model, label_for, unknown
from .taxonomy import Taxonomy, default_taxonomy

_TAG = re.compile(r"<[^>]{0,500}>")
_SPACE = re.compile(r"\s+")
_MARKER = re.compile(r"\[(?:email|phone|card|iban)\]")


def plain_text(comment: str) -> str:
    """What the models read: tags dropped, entities decoded, white space collapsed."""
    if "<" in comment or "&" in comment:
        comment = html.unescape(_TAG.sub(" ", comment))
    return _SPACE.sub(" ", comment).strip()


def classified_event_id(feedback_event_id: uuid.UUID) -> uuid.UUID:
    return derive_id("feedback.classified", feedback_event_id)


def reclassified_event_id(update_event_id: uuid.UUID) -> uuid.UUID:
    return derive_id("feedback.reclassified", update_event_id)


@dataclass(frozen=True)
class TextResult:
    redacted: str | None
    sentiment: Sentiment | None
    themes: list[str] = field(default_factory=list)
    theme_sentiments: list[ThemeSentiment] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    language: str | None = None


class Classifier:
    """Sentiment model, taxonomy and language detector, applied to one comment."""

    def __init__(
        self,
        sentiment: SentimentModel | None = None,
        taxonomy: Taxonomy | None = None,
        detector: LanguageDetector | None = None,
    ) -> None:
        self.sentiment = sentiment or default_model()
        self.taxonomy = taxonomy or default_taxonomy()
        self.detector = detector or default_detector()
        languages = getattr(self.sentiment, "languages", frozenset({"en"}))
        self.languages: frozenset[str] = frozenset(languages)
        self.model_name = str(getattr(self.sentiment, "name", type(self.sentiment).__name__))

    def text(self, comment: str | None) -> TextResult:
        if not comment or not comment.strip():
            return TextResult(redacted=comment, sentiment=None)
        redacted, pii = F.redact(comment)
        text = plain_text(redacted)
        found: list[str] = []
        if pii:
            found.append(F.PII)
        if F.is_urgent(text):
            found.append(F.URGENT)
        language = self.detector(_MARKER.sub(" ", text))
        supported = language is None or language in self.languages
        if not text:  # only markup: nothing to read
            return TextResult(redacted, None, [], [], found, language)
        if supported:
            mood = self.sentiment(text)
            known = {text: mood.compound}  # a clause that is the whole comment is not scored twice

            def clause_compound(clause: str) -> float:
                if clause not in known:
                    known[clause] = self.sentiment(clause).compound
                return known[clause]

            pairs = self.taxonomy.theme_compounds(text, clause_compound)
            per_theme = [ThemeSentiment(theme=t, label=label_for(c), compound=c) for t, c in pairs]
            themes = [t for t, _ in pairs]
        else:  # a language the model does not read: unknown, never a guess
            mood = unknown(self.model_name)
            themes = self.taxonomy.themes(text)
            per_theme = [ThemeSentiment(theme=t, label=mood.label, compound=0.0) for t in themes]
        return TextResult(redacted, mood, themes, per_theme, found, language)


def classify(event: FeedbackReceivedV1, classifier: Classifier | SentimentModel, source: str) -> FeedbackClassifiedV1:
    c = classifier if isinstance(classifier, Classifier) else Classifier(classifier)
    payload = event.payload
    band = band_for(payload.score)
    r = c.text(payload.comment)
    flags = list(r.flags)
    if F.mismatch(band, r.sentiment):
        flags.append(F.MISMATCH_FLAG)
    if not payload.consent_to_contact:
        flags.append(F.NO_CONTACT)
    feedback = payload if r.redacted == payload.comment else payload.model_copy(update={"comment": r.redacted})
    return FeedbackClassifiedV1.following(
        event,
        event_id=classified_event_id(event.event_id),
        source=source,
        occurred_at=event.occurred_at,
        payload=FeedbackClassifiedPayloadV1(
            feedback_event_id=event.event_id,
            feedback=feedback,
            band=band,
            sentiment=r.sentiment,
            themes=r.themes,
            flags=flags,
            theme_sentiments=r.theme_sentiments,
            language=r.language,
        ),
    )


def reclassify(event: FeedbackUpdatedV1, classifier: Classifier, source: str) -> FeedbackReclassifiedV1:
    """A late comment classified like a first one; no band (the score never changes) and so no
    score_sentiment_mismatch, which needs the score."""
    update = event.payload
    r = classifier.text(update.comment if "comment" in update.fields else None)
    flags = list(r.flags)
    if update.consent_to_contact is False:
        flags.append(F.NO_CONTACT)
    redacted = update if r.redacted == update.comment else update.model_copy(update={"comment": r.redacted})
    return FeedbackReclassifiedV1.following(
        event,
        event_id=reclassified_event_id(event.event_id),
        source=source,
        occurred_at=event.occurred_at,
        payload=FeedbackReclassifiedPayloadV1(
            feedback_event_id=update.feedback_event_id,
            update_event_id=event.event_id,
            update=redacted,
            sentiment=r.sentiment,
            themes=r.themes,
            flags=flags,
            theme_sentiments=r.theme_sentiments,
            language=r.language,
        ),
    )

