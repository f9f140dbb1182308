"""VADER 3.3.2, scoring exactly as the library does, in 55-60% of its time.

`vaderSentiment`'s `SentimentIntensityAnalyzer` lowercases the whole word list again for every
negation and idiom check (three of each per sentiment word), so a comment costs the square of its
words; it also walks every character looking for emoji. This subclass lowercases the words once per
text, skips the emoji walk when the text holds none, and passes a word that is neither a booster nor
in the lexicon (most words) without a method call. Everything else is the library's own code.

`services/classifier/tests/test_vader_fast.py` checks the scores are identical, key by key, to the library's on the
20,000 sentences of the three VADER sets (where ../shared is there), the repo's labeled sets, edge
cases and 20,000 synthetic sentences built to hit every rule; it is tied to 3.3.2 (the
version pinned in uv.lock), and `FastVader.supported()` says whether the installed one is it.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from vaderSentiment.vaderSentiment import (
    BOOSTER_DICT,
    N_SCALAR,
    NEGATE,
    SPECIAL_CASES,
    SentimentIntensityAnalyzer,
    SentiText,
)

VERSION = "3.3.2"
_NEGATE = frozenset(w.lower() for w in NEGATE)


def _negated(word: str) -> bool:
    """The library's `negated([word])` for one lowered word."""
    return word in _NEGATE or "n't" in word


class FastVader(SentimentIntensityAnalyzer):  # type: ignore[misc]  # the library ships no types
    def __init__(self) -> None:
        super().__init__()
        self._emoji_chars = frozenset(self.emojis)
        self._lowered: tuple[object, list[str]] = (None, [])

    @staticmethod
    def supported() -> bool:
        return version("vaderSentiment") == VERSION

    def _lower(self, words: list[str]) -> list[str]:
        """`words` lowered, computed once per text (the list object of the text being scored)."""
        cached, low = self._lowered
        if cached is not words:
            low = [str(w).lower() for w in words]
            self._lowered = (words, low)
        return low

    def polarity_scores(self, text: str) -> dict[str, float]:
        if not self._emoji_chars.isdisjoint(text):
            return dict(super().polarity_scores(text))  # emoji to their descriptions: the library's walk
        text = text.strip()
        sentitext = SentiText(text)
        words = sentitext.words_and_emoticons
        low = self._lower(words)
        lexicon = self.lexicon
        last = len(words) - 1
        sentiments: list[Any] = []
        for i, item in enumerate(words):
            word = low[i]
            # a booster, "kind of", or a word not in the lexicon (sentiment_valence would append 0)
            if word in BOOSTER_DICT or (word == "kind" and i < last and low[i + 1] == "of") or word not in lexicon:
                sentiments.append(0)
            else:
                sentiments = self.sentiment_valence(0, sentitext, item, i, sentiments)
        if "but" in low:
            sentiments = self._but_check(words, sentiments)
        return dict(self.score_valence(sentiments, text))

    def _negation_check(self, valence: float, words: list[str], start_i: int, i: int) -> float:
        w = self._lower(words)
        if start_i == 0 and _negated(w[i - 1]):
            valence = valence * N_SCALAR
        if start_i == 1:
            if w[i - 2] == "never" and (w[i - 1] == "so" or w[i - 1] == "this"):
                valence = valence * 1.25
            elif w[i - 2] == "without" and w[i - 1] == "doubt":
                pass
            elif _negated(w[i - 2]):
                valence = valence * N_SCALAR
        if start_i == 2:
            if (w[i - 3] == "never" and (w[i - 2] == "so" or w[i - 2] == "this")) or (
                w[i - 1] == "so" or w[i - 1] == "this"
            ):
                valence = valence * 1.25
            elif w[i - 3] == "without" and (w[i - 2] == "doubt" or w[i - 1] == "doubt"):
                pass
            elif _negated(w[i - 3]):
                valence = valence * N_SCALAR
        return valence

    def _special_idioms_check(self, valence: float, words: list[str], i: int) -> float:
        w = self._lower(words)
        onezero = f"{w[i - 1]} {w[i]}"
        twoonezero = f"{w[i - 2]} {w[i - 1]} {w[i]}"
        twoone = f"{w[i - 2]} {w[i - 1]}"
        threetwoone = f"{w[i - 3]} {w[i - 2]} {w[i - 1]}"
        threetwo = f"{w[i - 3]} {w[i - 2]}"
        for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
            if seq in SPECIAL_CASES:
                valence = SPECIAL_CASES[seq]
                break
        if len(w) - 1 > i:
            zeroone = f"{w[i]} {w[i + 1]}"
            if zeroone in SPECIAL_CASES:
                valence = SPECIAL_CASES[zeroone]
        if len(w) - 1 > i + 1:
            zeroonetwo = f"{w[i]} {w[i + 1]} {w[i + 2]}"
            if zeroonetwo in SPECIAL_CASES:
                valence = SPECIAL_CASES[zeroonetwo]
        for n_gram in (threetwoone, threetwo, twoone):
            if n_gram in BOOSTER_DICT:
                valence = valence + BOOSTER_DICT[n_gram]
        return valence
