"""`FastVader` scores exactly as vaderSentiment does: every key of every score, on every sentence."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from bench.classifier import eval_sentiment
from bench.classifier.eval_themes import load as load_themes
from npsloop_classifier.sentiment import Ensemble, Vader, retail_lexicon
from npsloop_classifier.vader_fast import FastVader

DATA = Path(__file__).resolve().parents[3] / "bench" / "classifier" / "data"
EDGE = [
    "", "   ", "👍👍", "great 😀 but 😡", "NOT GOOD at all!!!", "never so good", "never this bad", "kind of bad",
    "kind", "no", "no no no good", "no good or bad", "without doubt the best", "without a doubt great",
    "at least ok", "least good", "very least good", "the shit", "the bomb", "yeah right", "kiss of death",
    "isn't bad but not great", "but", "good but but bad", "good good but bad bad", "GREAT staff, AWFUL queue",
    "I don't hate it", "aint nobody happy", "sort of nice", "kind of lovely?", "Wow!!!! amazing????",
    "It was fine :) really :(", "a" * 400, "good " * 200,
]  # fmt: skip


def synthetic(n: int = 20000, seed: int = 8) -> list[str]:
    """Sentences that exercise every rule: lexicon words, boosters, negations, "no", "never so",
    "without doubt", "least", "kind of", idioms, "but", ALL CAPS, "!" and "?" and emoji."""
    from vaderSentiment.vaderSentiment import BOOSTER_DICT, NEGATE, SPECIAL_CASES

    rng = random.Random(seed)
    lexicon = sorted(SentimentIntensityAnalyzer().lexicon)
    glue = ["the", "staff", "was", "queue", "so", "this", "at", "very", "least", "kind", "of", "or", "nor", "no",
            "never", "without", "doubt", "but", "and", "really", "shan't", "needn't", "oughtn't", "wouldn't've"]  # fmt: skip
    pools = [lexicon, sorted(BOOSTER_DICT), sorted(NEGATE), glue, [w for k in SPECIAL_CASES for w in k.split()]]
    out = []
    for _ in range(n):
        words = [rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 14))]
        words = [w.upper() if rng.random() < 0.08 else w for w in words]
        out.append(" ".join(words) + rng.choice(["", ".", "!", "!!!", "??", "?!?!", " :)", " 😀", " 😡"]))
    return out


def corpus() -> list[str]:
    """The VADER paper's sets where `../shared` is there, the labeled sets of the repo, edge cases,
    and 20,000 synthetic sentences."""
    shared = [
        t for path in sorted(eval_sentiment.DEFAULT_DIR.glob("*_GroundTruth.txt")) for t, _ in eval_sentiment.load(path)
    ]
    ours = [
        line.split("\t")[-1] for path in sorted(DATA.glob("*.tsv")) for line in path.read_text("utf-8").splitlines()
    ]
    return shared + ours + [ex.text for ex in load_themes()] + EDGE + synthetic()


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
    assert len(texts) > 20500
    differ = [(t, stock.polarity_scores(t), fast.polarity_scores(t)) for t in texts]
    differ = [d for d in differ if d[1] != d[2]]
    assert differ == [], f"{len(differ)} differ, first: {differ[:3]}"


def test_same_words_scored_again_after_another_text() -> None:
    """The lowered-words cache is per text: interleaving texts never mixes their words."""
    stock, fast = SentimentIntensityAnalyzer(), FastVader()
    a, b = "not good at all", "really good staff"
    for text in [a, b, a, a, b]:
        assert fast.polarity_scores(text) == stock.polarity_scores(text)
