"""VADER 3.3.2, scoring exactly as the library does, in about 35-40% of its time (16-17 us against
44-48 us a sentence on the 20,000 sentences of the VADER sets, 2026-12-05).

`vaderSentiment`'s `SentimentIntensityAnalyzer` lowercases the whole word list again for every
negation and idiom check (three of each per sentiment word), so a comment costs the square of its
words; it also walks every character looking for emoji. This subclass lowercases the words once per
text, skips the emoji walk when the text holds none (a text with emoji takes the library's path),
scores only the words that are in the lexicon, skips the idiom check where none of the words it
looks at is in an idiom, and runs the tokenizing (`SentiText`), `sentiment_valence` and
`score_valence` as ports of the library's code, operation for operation.

`services/classifier/tests/test_vader_fast.py` checks the scores are identical, key by key, to the library's on the
20,000 sentences of the three VADER sets (where ../shared is there), the repo's labeled sets, edge
cases and 20,000 synthetic sentences built to hit every rule; it is tied to 3.3.2 (the
version pinned in uv.lock), and `FastVader.supported()` says whether the installed one is it.
"""

from __future__ import annotations

import math
import string
from importlib.metadata import version
from typing import Any

from vaderSentiment.vaderSentiment import (
    BOOSTER_DICT,
    C_INCR,
    N_SCALAR,
    NEGATE,
    SPECIAL_CASES,
    SentimentIntensityAnalyzer,
    normalize,
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
        # SentiText: the words with their outer punctuation stripped (unless 2 letters or fewer
        # remain: an emoticon), and whether some but not all of them are in capitals
        punctuation = _PUNCTUATION
        words = [token if len(stripped := token.strip(punctuation)) <= 2 else stripped for token in text.split()]
        capitals = sum(map(str.isupper, words))
        is_cap_diff = 0 < len(words) - capitals < len(words)
        low = [w.lower() for w in words]
        self._lowered = (words, low)
        lexicon = self.lexicon
        last = len(words) - 1
        sentiments: list[Any] = [0] * len(words)  # a word not in the lexicon, a booster or "kind of": 0
        for i in [i for i, word in enumerate(low) if word in lexicon]:
            word = low[i]
            if word not in BOOSTER_DICT and not (word == "kind" and i < last and low[i + 1] == "of"):
                sentiments[i] = self._valence(words, low, i, is_cap_diff)
        if "but" in low:
            sentiments = self._but_check(words, sentiments)
        return _score(sentiments, text)

    def _valence(self, words: list[str], w: list[str], i: int, is_cap_diff: bool) -> float:
        """The library's `sentiment_valence` for the lexicon word at `i`, operation for operation."""
        lexicon = self.lexicon
        word = w[i]
        valence: float = lexicon[word]
        if word == "no" and i != len(w) - 1 and w[i + 1] in lexicon:
            valence = 0.0
        if (
            (i > 0 and w[i - 1] == "no")
            or (i > 1 and w[i - 2] == "no")
            or (i > 2 and w[i - 3] == "no" and w[i - 1] in ("or", "nor"))
        ):
            valence = lexicon[word] * N_SCALAR
        if is_cap_diff and words[i].isupper():
            if valence > 0:
                valence += C_INCR
            else:
                valence -= C_INCR
        for start_i in range(3):
            if i > start_i and w[i - (start_i + 1)] not in lexicon:
                before = w[i - (start_i + 1)]
                s = 0.0  # scalar_inc_dec
                if before in BOOSTER_DICT:
                    s = BOOSTER_DICT[before]
                    if valence < 0:
                        s *= -1
                    if is_cap_diff and words[i - (start_i + 1)].isupper():
                        if valence > 0:
                            s += C_INCR
                        else:
                            s -= C_INCR
                if start_i == 1 and s != 0:
                    s = s * 0.95
                if start_i == 2 and s != 0:
                    s = s * 0.9
                valence = valence + s
                valence = self._negation_check(valence, words, start_i, i)
                if start_i == 2:
                    valence = self._special_idioms_check(valence, words, i)
        # _least_check
        if i > 1 and w[i - 1] not in lexicon and w[i - 1] == "least":
            if w[i - 2] != "at" and w[i - 2] != "very":
                valence = valence * N_SCALAR
        elif i > 0 and w[i - 1] not in lexicon and w[i - 1] == "least":
            valence = valence * N_SCALAR
        return valence

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
        if _IDIOM_WORDS.isdisjoint(w[max(0, i - 3) : i + 3]):
            return valence  # no idiom or booster phrase can be among the words it looks at
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


_PUNCTUATION = string.punctuation
#: The words of VADER's idioms and of its boosters of more than one word.
_IDIOM_WORDS = frozenset(
    word for phrase in [*SPECIAL_CASES, *(b for b in BOOSTER_DICT if " " in b)] for word in phrase.split()
)


def _score(sentiments: list[Any], text: str) -> dict[str, float]:
    """The library's `score_valence`, operation for operation."""
    if not sentiments:
        return {"neg": 0.0, "neu": 0.0, "pos": 0.0, "compound": 0.0}
    sum_s = float(sum(sentiments))
    ep_count = min(text.count("!"), 4)
    qm_count = text.count("?")
    qm_amplifier: float = 0
    if qm_count > 1:
        qm_amplifier = qm_count * 0.18 if qm_count <= 3 else 0.96
    punct_emph_amplifier = ep_count * 0.292 + qm_amplifier
    if sum_s > 0:
        sum_s += punct_emph_amplifier
    elif sum_s < 0:
        sum_s -= punct_emph_amplifier
    compound = normalize(sum_s)
    pos_sum = neg_sum = 0.0
    neu_count = 0
    for score in sentiments:
        if score > 0:
            pos_sum += float(score) + 1
        if score < 0:
            neg_sum += float(score) - 1
        if score == 0:
            neu_count += 1
    if pos_sum > math.fabs(neg_sum):
        pos_sum += punct_emph_amplifier
    elif pos_sum < math.fabs(neg_sum):
        neg_sum -= punct_emph_amplifier
    total = pos_sum + math.fabs(neg_sum) + neu_count
    return {
        "neg": round(math.fabs(neg_sum / total), 3),
        "neu": round(math.fabs(neu_count / total), 3),
        "pos": round(math.fabs(pos_sum / total), 3),
        "compound": round(compound, 4),
    }
