"""`FastVader` scores exactly as vaderSentiment does: every key of every score, on every sentence."""

from __future__ import annotations

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from bench.classifier import eval_sentiment
from bench.classifier.eval_themes import load as load_themes
from npsloop_classifier.sentiment import Ensemble, Vader, retail_lexicon
from npsloop_classifier.vader_fast import FastVader

EDGE = [
    "", "   ", "👍👍", "great 😀 but 😡", "NOT GOOD at all!!!", "never so good", "never this bad", "kind of bad",
    "kind", "no", "no no no good", "no good or bad", "without doubt the best", "without a doubt great",
    "at least ok", "least good", "very least good", "the shit", "the bomb", "yeah right", "kiss of death",
    "isn't bad but not great", "but", "good but but bad", "good good but bad bad", "GREAT staff, AWFUL queue",
    "I don't hate it", "aint nobody happy", "sort of nice", "kind of lovely?", "Wow!!!! amazing????",
    "It was fine :) really :(", "a" * 400, "good " * 200,
]  # fmt: skip


def corpus() -> list[str]:
    texts = [
        t for path in sorted(eval_sentiment.DEFAULT_DIR.glob("*_GroundTruth.txt")) for t, _ in eval_sentiment.load(path)
    ]
    return texts + [ex.text for ex in load_themes()] + EDGE


def test_installed_vader_is_the_checked_version() -> None:
    # If this fails, vaderSentiment was upgraded: re-run this file against the new version and
    # bump vader_fast.VERSION only when the scores still match.
    assert FastVader.supported()
    assert isinstance(Vader()._analyzer, FastVader)
    assert type(Vader(fast=False)._analyzer) is SentimentIntensityAnalyzer


@pytest.mark.parametrize("extra", [False, True], ids=["plain", "retail-lexicon"])
def test_scores_identical_to_the_library(extra: bool) -> None:
    stock, fast = SentimentIntensityAnalyzer(), FastVader()
    if extra:  # the ensemble's lexicon, phrase tokens included
        lexicon = {**retail_lexicon(), **Ensemble().phrases.tokens}
        stock.lexicon.update(lexicon)
        fast.lexicon.update(lexicon)
    texts = corpus()
    assert len(texts) > 20000
    differ = [(t, stock.polarity_scores(t), fast.polarity_scores(t)) for t in texts]
    differ = [d for d in differ if d[1] != d[2]]
    assert differ == [], f"{len(differ)} differ, first: {differ[:3]}"


def test_same_words_scored_again_after_another_text() -> None:
    """The lowered-words cache is per text: interleaving texts never mixes their words."""
    stock, fast = SentimentIntensityAnalyzer(), FastVader()
    a, b = "not good at all", "really good staff"
    for text in [a, b, a, a, b]:
        assert fast.polarity_scores(text) == stock.polarity_scores(text)
