"""Case-insensitive matching of the classifier's big alternations, faster than `re.IGNORECASE`
(the urgent words 3.5x; the phrase alternation, with unnamed alternatives, about 1.6x).

CPython's regex engine skips an alternative whose first character does not match with a single
comparison, but only for a case-sensitive literal: under IGNORECASE every alternative is tried
in full at every position. So a pattern written in lower case is compiled case-sensitively and run
on the lowered text; match positions are the text's own, since `str.lower` keeps the length of all
but a few characters (a text holding one of those, or a pattern with a capital, falls back to
IGNORECASE: the result is the same, only slower).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

_ESCAPE = re.compile(r"\\.")


class Caseless:
    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._ignorecase = re.compile(pattern, re.IGNORECASE)
        lower = not any(ch.isupper() for ch in _ESCAPE.sub("", pattern))  # \W, \S, \B are not capitals
        self._lower = re.compile(pattern) if lower else None

    def _target(self, text: str) -> tuple[re.Pattern[str], str]:
        if self._lower is not None:
            low = text.lower()
            if len(low) == len(text):
                return self._lower, low
        return self._ignorecase, text

    def search(self, text: str) -> bool:
        pattern, target = self._target(text)
        return pattern.search(target) is not None

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """The matches in `text`; use their positions and group names (their text may be lowered)."""
        pattern, target = self._target(text)
        return pattern.finditer(target)

    def replace(self, text: str, token: Callable[[str], str]) -> str:
        """`text` with each match replaced by `token(the text it matched)`."""
        out: list[str] = []
        at = 0
        for m in self.finditer(text):
            out.append(text[at : m.start()])
            out.append(token(text[m.start() : m.end()]))
            at = m.end()
        if not out:
            return text
        out.append(text[at:])
        return "".join(out)
