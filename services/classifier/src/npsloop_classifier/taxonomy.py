"""The theme taxonomy: a TOML file of themes with synonyms and stems, validated on load.

`data/taxonomy.toml` is the retail default; `NPSLOOP_TAXONOMY_FILE` points at another. A comment
is split into clauses (sentence ends, semicolons, and contrast words such as "but" or "although"),
and each theme gets the sentiment of the clauses that mention it: "friendly staff but the queue
was endless" is staff positive, waiting_time negative.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from .caseless import Caseless

ThemeId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,47}$")]
Term = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=60)]


class ThemeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1)
    synonyms: list[Term] = Field(default_factory=list)
    stems: list[Term] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some_terms(self) -> ThemeSpec:
        if not self.synonyms and not self.stems:
            raise ValueError("a theme needs at least one synonym or stem")
        return self


class TaxonomySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    themes: dict[ThemeId, ThemeSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _terms_unique(self) -> TaxonomySpec:
        owner: dict[str, str] = {}
        for theme, spec in self.themes.items():
            for term in [*spec.synonyms, *(s + "*" for s in spec.stems)]:
                key = term.casefold()
                if key in owner and owner[key] != theme:
                    raise ValueError(f"term {term!r} is in both {owner[key]!r} and {theme!r}")
                owner[key] = theme
        return self


class TaxonomyError(ValueError):
    """The taxonomy file is missing or invalid; the message names the file and the fault."""


# Clause boundaries: sentence ends, semicolons, commas, line breaks, contrast words, and an "and"
# that starts a new subject ("... and the queue was long").
_CLAUSE = re.compile(
    r"[.!?;,\n]+|\s[-\u2013\u2014]\s|\s+\b(?:but|however|although|though|whereas|except|yet|while|aber|mais|pero)\b\s*"
    r"|\s+and\s+(?=(?:the|my|it|they|there|their|your|our|we|i|prices?|staff)\b)",
    re.IGNORECASE,
)


def clause_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each clause, boundaries excluded."""
    spans, at = [], 0
    for m in _CLAUSE.finditer(text):
        if m.start() > at:
            spans.append((at, m.start()))
        at = m.end()
    if at < len(text):
        spans.append((at, len(text)))
    return spans


def clauses(text: str) -> list[str]:
    return [c for c in (text[a:b].strip() for a, b in clause_spans(text)) if c]


@dataclass(frozen=True)
class Mention:
    theme: str
    clauses: list[str]


_WORDS = re.compile(r"\w+")
_UNSEEN = object()
MEMO_WORDS = 100_000  # distinct words remembered per taxonomy (a few MB at most)


def _phrase_key(phrase: str) -> str:
    return " ".join(phrase.lower().split())


class Taxonomy:
    """Finds themes in one pass: single words by dictionary, stems by prefix, phrases by one regex."""

    def __init__(self, spec: TaxonomySpec, source: str) -> None:
        self.spec, self.source = spec, source
        self._order = {theme: i for i, theme in enumerate(spec.themes)}
        self._words: dict[str, str] = {}
        self._stems: dict[str, str] = {}
        phrases: list[tuple[str, str]] = []
        for theme, t in spec.themes.items():
            for term in t.synonyms:
                if _WORDS.fullmatch(term):
                    self._words[term.casefold()] = theme
                else:
                    phrases.append((theme, term))
            for stem in t.stems:
                self._stems[stem.casefold()] = theme
        self._stem_lengths = sorted({len(s) for s in self._stems})
        # One alternation, a theme's terms together and longest first; unnamed (a named group
        # before each alternative would stop the engine from skipping it on its first letter), the
        # theme is looked up from the matched words.
        self._phrase_theme = {_phrase_key(term): theme for theme, term in phrases}
        alternatives = [
            alternative
            for theme in spec.themes
            for alternative in sorted(
                (re.escape(term.lower()).replace(r"\ ", r"\s+") for th, term in phrases if th == theme),
                key=len,
                reverse=True,
            )
        ]
        self._phrases = Caseless(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)") if alternatives else None
        # where lower-casing the text changes its length ("İ"), the match is the text's own letters
        # and the theme is the one whose phrases match it whole
        self._phrase_themes = [
            (
                theme,
                re.compile(
                    "|".join(re.escape(t.lower()).replace(r"\ ", r"\s+") for th, t in phrases if th == theme),
                    re.IGNORECASE,
                ),
            )
            for theme in spec.themes
            if any(th == theme for th, _ in phrases)
        ]
        self._memo: dict[str, str | None] = {}  # word -> theme (or None): the vocabulary is small

    @property
    def ids(self) -> list[str]:
        return list(self.spec.themes)

    def hits(self, text: str) -> list[tuple[str, int]]:
        """(theme, position) of every term found in `text`."""
        out: list[tuple[str, int]] = []
        memo = self._memo
        folded = text.casefold()
        same = len(folded) == len(text)  # else ("Straße"), fold word by word to keep positions
        for m in _WORDS.finditer(folded if same else text):
            word = m.group() if same else m.group().casefold()
            theme = memo.get(word, _UNSEEN)
            if theme is _UNSEEN:
                theme = self._word_theme(word)
                if len(memo) < MEMO_WORDS:
                    memo[word] = theme
            if theme is not None:
                out.append((theme, m.start()))  # type: ignore[arg-type]
        if self._phrases is not None:
            for m in self._phrases.finditer(text):
                found = m.group()
                phrase_theme = self._phrase_theme.get(_phrase_key(found))
                if phrase_theme is None:  # a letter whose lower case is longer: "WAİTİNG TİME"
                    phrase_theme = next((t for t, p in self._phrase_themes if p.fullmatch(found)), None)
                if phrase_theme is not None:
                    out.append((phrase_theme, m.start()))
        return out

    def _word_theme(self, word: str) -> str | None:
        theme = self._words.get(word)
        if theme is None:
            for n in self._stem_lengths:
                if n > len(word):
                    break
                theme = self._stems.get(word[:n])
                if theme is not None:
                    break
        return theme

    def themes(self, text: str) -> list[str]:
        return self._sorted({theme for theme, _ in self.hits(text)})

    def _sorted(self, themes: Iterable[str]) -> list[str]:
        return sorted(themes, key=self._order.__getitem__)

    def mentions(self, text: str) -> list[Mention]:
        """Each theme of `text` with the clauses that name it (in taxonomy order)."""
        hits = self.hits(text)
        if not hits:
            return []
        spans = clause_spans(text)
        by_theme: dict[str, list[str]] = {}
        for theme, at in hits:
            clause = next((text[a:b] for a, b in spans if a <= at < b), text)
            found = by_theme.setdefault(theme, [])
            if clause not in found:
                found.append(clause)
        return [Mention(t, by_theme[t]) for t in self._sorted(by_theme)]

    def theme_compounds(self, text: str, compound: Callable[[str], float]) -> list[tuple[str, float]]:
        """(theme, compound) per theme, the mean over the clauses that mention it."""
        out = []
        for m in self.mentions(text):
            values = [compound(c) for c in m.clauses]
            out.append((m.theme, round(sum(values) / len(values), 4)))
        return out


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """The taxonomy at `path`, or the retail default. Raises TaxonomyError with the reason."""
    if path is None:
        source = "npsloop_classifier/data/taxonomy.toml"
        raw = resources.files("npsloop_classifier").joinpath("data/taxonomy.toml").read_text("utf-8")
    else:
        source = str(path)
        try:
            raw = path.read_text("utf-8")
        except OSError as exc:
            raise TaxonomyError(f"taxonomy file {source}: {exc.strerror or exc}") from None
    try:
        spec = TaxonomySpec.model_validate(tomllib.loads(raw))
    except tomllib.TOMLDecodeError as exc:
        raise TaxonomyError(f"taxonomy file {source}: not TOML: {exc}") from None
    except ValidationError as exc:
        faults = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise TaxonomyError(f"taxonomy file {source}: {faults}") from None
    return Taxonomy(spec, source)


@cache
def default_taxonomy() -> Taxonomy:
    return load_taxonomy()
