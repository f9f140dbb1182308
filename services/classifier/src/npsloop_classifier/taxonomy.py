"""The theme taxonomy: a TOML file of themes with synonyms and stems, validated on load.

`data/taxonomy.toml` is the retail default; `NPSLOOP_TAXONOMY_FILE` points at another. A comment
is split into clauses (sentence ends, semicolons, and contrast words such as "but" or "although"),
and each theme gets the sentiment of the clauses that mention it: "friendly staff but the queue
was endless" is staff positive, waiting_time negative.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

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
    r"[.!?;,\n]+|\s[-–—]\s|\s+\b(?:but|however|although|though|whereas|except|yet|while|aber|mais|pero)\b\s*"
    r"|\s+and\s+(?=(?:the|my|it|they|there|their|your|our|we|i|prices?|staff)\b)",
    re.IGNORECASE,
)


def clauses(text: str) -> list[str]:
    return [c.strip() for c in _CLAUSE.split(text) if c and c.strip()]


@dataclass(frozen=True)
class Mention:
    theme: str
    clauses: list[str]


class Taxonomy:
    def __init__(self, spec: TaxonomySpec, source: str) -> None:
        self.spec, self.source = spec, source
        self._patterns: dict[str, re.Pattern[str]] = {}
        for theme, t in spec.themes.items():
            alternatives = sorted((re.escape(s).replace(r"\ ", r"\s+") for s in t.synonyms), key=len, reverse=True)
            alternatives += [re.escape(s) + r"\w*" for s in t.stems]
            self._patterns[theme] = re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)

    @property
    def ids(self) -> list[str]:
        return list(self.spec.themes)

    def themes(self, text: str) -> list[str]:
        return [theme for theme, pattern in self._patterns.items() if pattern.search(text)]

    def mentions(self, text: str) -> list[Mention]:
        """Each theme of `text` with the clauses that name it (in taxonomy order)."""
        found: list[Mention] = []
        parts = clauses(text)
        for theme, pattern in self._patterns.items():
            hits = [c for c in parts if pattern.search(c)]
            if hits:
                found.append(Mention(theme, hits))
            elif pattern.search(text):  # a term across a clause boundary: the whole comment
                found.append(Mention(theme, [text]))
        return found

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
