"""Language of a comment: lingua (lingua-language-detector, models shipped in the wheel), in its
low-accuracy mode over the languages a European retailer meets (fast: tens of microseconds).

Short Latin-script text is where statistical detectors fail ("Nice shop" reads as Czech): a
comment of at most four words, all of them English words the sentiment lexicons know, is English.
`None` means undetected (emoji only, digits, too short to tell).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

#: ISO 639-1 codes the detector chooses among (lingua's names in LANGUAGES below).
LANGUAGES: dict[str, str] = {
    "en": "ENGLISH", "de": "GERMAN", "fr": "FRENCH", "es": "SPANISH", "it": "ITALIAN", "nl": "DUTCH",
    "pt": "PORTUGUESE", "pl": "POLISH", "sv": "SWEDISH", "da": "DANISH", "nb": "BOKMAL", "fi": "FINNISH",
    "cs": "CZECH", "hu": "HUNGARIAN", "ro": "ROMANIAN", "el": "GREEK", "tr": "TURKISH", "ru": "RUSSIAN",
    "uk": "UKRAINIAN", "ar": "ARABIC", "he": "HEBREW", "zh": "CHINESE", "ja": "JAPANESE", "ko": "KOREAN",
}  # fmt: skip


def _words(text: str) -> list[str]:
    return text.split()


_LETTERS = re.compile(r"[^\W\d_]+")
_COMMON_EN = frozenset(
    _words(
        "a an the and or but very so too really quite was were is are be been it its this that i we you they my our "
        "shop store staff service thanks thank you all ok okay fine good nice great bad poor place here there"
    )
)


_EXTRA_EN = tuple(
    _words(
        "at in on of for to from with by about after before again always every each some any much many more most "
        "what which who when where why how not no never nothing nobody one two three four five six ten twenty forty "
        "had has have do does did done get got go went come came take took make made me him her them us your their "
        "ever still only just also than then now today yesterday week weeks day days hour hours minutes morning full "
        "car park floor floors shelves shelf form page room order ordered items item bread milk food people "
        "standards stuff things thing time times lot lots can could would should will call phone please back"
    )
)


class LanguageDetector:
    def __init__(self, languages: Iterable[str] = LANGUAGES, english_words: Iterable[str] = ()) -> None:
        from lingua import Language, LanguageDetectorBuilder

        chosen = [getattr(Language, LANGUAGES[code]) for code in languages]
        self._detector = (
            LanguageDetectorBuilder.from_languages(*chosen)
            .with_low_accuracy_mode()
            .with_preloaded_language_models()  # ~1 s and ~50 MB at start, no stall on a first German comment
            .with_minimum_relative_distance(0.1)
            .build()
        )
        self._english = frozenset(w.lower() for w in english_words) | _COMMON_EN

    def __call__(self, text: str) -> str | None:
        words = _LETTERS.findall(text)
        if not words:
            return None
        known = sum(map(self._english.__contains__, map(str.lower, words)))
        if (known == len(words) and len(words) <= 4) or (known >= 0.8 * len(words) and _latin(text)):
            return "en"  # English words in Latin script: no trigram model needed (and none fooled)
        found = self._detector.detect_language_of(text)
        return None if found is None else str(found.iso_code_639_1.name).lower()


def _latin(text: str) -> bool:
    if max(text) < "\u0250":  # the usual case, without a Python loop
        return True
    return all(ord(ch) < 0x250 for ch in text if ch.isalpha())


#: Function words of other languages that an English word list (built from books) also holds.
_NOT_EN = frozenset(
    _words(
        "de la le les des du et il elle une un est sont très die der das und ist nicht sehr gut ich wir zu "
        "es el los las con para por muy bien het een en og och er ikke"
    )
)


def _spelling_words(min_count: int = 2) -> list[str]:
    """English words from TextBlob's spelling list (Norvig's big.txt counts), shipped in its wheel."""
    from .sentiment import textblob_file

    words = []
    for line in textblob_file("en-spelling.txt").read_text("utf-8").splitlines():
        word, _, count = line.partition(" ")
        if word and not word.startswith(";") and count.isdigit() and int(count) >= min_count:
            words.append(word)
    return [w for w in words if w.lower() not in _NOT_EN]


@cache
def default_detector() -> LanguageDetector:
    from .sentiment import default_model

    model = default_model()
    from .taxonomy import default_taxonomy

    terms = [w for spec in default_taxonomy().spec.themes.values() for t in spec.synonyms for w in t.split()]
    words = [*model.vader.lexicon_words(), *model.pattern.polarity, *terms, *_EXTRA_EN, *_spelling_words()]
    return LanguageDetector(english_words=[w for w in words if w.lower() not in _NOT_EN])
