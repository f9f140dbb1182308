"""Sentiment of the free-text comment. VADER (Hutto & Gilbert 2014) as the first model.

Label mapping (the paper's): compound >= 0.05 positive, <= -0.05 negative, else neutral.
"""

from __future__ import annotations

from typing import Protocol

from npsloop_schemas import Sentiment, SentimentLabel

THRESHOLD = 0.05


def label_for(compound: float) -> SentimentLabel:
    if compound >= THRESHOLD:
        return SentimentLabel.POSITIVE
    if compound <= -THRESHOLD:
        return SentimentLabel.NEGATIVE
    return SentimentLabel.NEUTRAL


class SentimentModel(Protocol):
    def __call__(self, text: str) -> Sentiment: ...


class Vader:
    name = "vader-3.3.2"

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def __call__(self, text: str) -> Sentiment:
        compound = float(self._analyzer.polarity_scores(text)["compound"])
        return Sentiment(label=label_for(compound), compound=compound, model=self.name)
