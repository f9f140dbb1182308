"""The faster case-insensitive matching finds what re.IGNORECASE finds, at the text's own positions."""

from __future__ import annotations

import re

import pytest

from npsloop_classifier import sentiment as S
from npsloop_classifier.caseless import Caseless
from npsloop_classifier.taxonomy import default_taxonomy

TEXTS = [
    "Friendly STAFF but the Queue Was Endless", "İstanbul store: LONG QUEUES", "Straße and long queues",
    "no wait at all", "K\u212a long waits", "", "Call Me ASAP",
]  # fmt: skip


@pytest.mark.parametrize("pattern", [r"\b(?:long (?:queues?|waits?)|call me|asap)\b", r"\bLong queues\b", r"\Bue"])
def test_same_matches_as_ignorecase(pattern: str) -> None:
    fast, slow = Caseless(pattern), re.compile(pattern, re.IGNORECASE)
    for text in TEXTS:
        assert [m.span() for m in fast.finditer(text)] == [m.span() for m in slow.finditer(text)], text
        assert fast.search(text) == (slow.search(text) is not None)
    assert (fast._lower is None) == any(c.isupper() for c in re.sub(r"\\.", "", pattern))  # a capital: IGNORECASE


def test_replace_keeps_the_original_case_around_matches() -> None:
    c = Caseless(r"\blong queues?\b")
    assert c.replace("LONG QUEUES, Great Staff", lambda found: f"<{found}>") == "<LONG QUEUES>, Great Staff"
    assert c.replace("İ: long queue", str.upper) == "İ: LONG QUEUE"  # "İ".lower() is two characters: fallback


def test_theme_positions_hold_where_folding_changes_the_length() -> None:
    text = "Straße İstanbul, self checkout broke"
    hits = default_taxonomy().hits(text)
    assert ("checkout_payment", text.index("self checkout")) in hits
    assert ("checkout_payment", text.index("checkout")) in hits


def test_a_phrase_is_found_where_its_own_letters_lower_to_more() -> None:
    text = "Waited a LONG TİME"  # "İ".lower() is two characters: the phrase key misses, its pattern does not
    assert ("waiting_time", text.index("LONG")) in default_taxonomy().hits(text)


def test_phrase_rewrite_names_the_phrase_that_matched() -> None:
    p = S.Phrases([("long queues?", -1.0), ("long (?:queues?|waits?)", -2.0), ("rude", -3.0)])
    assert p.rewrite("A LONG queue, long waits and Rude staff") == "A zzphrase0, zzphrase1 and zzphrase2 staff"


def test_phrase_file_refuses_look_around(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(S, "_data", lambda name: "rude(?= staff)\t-2\n")
    S.retail_phrases.cache_clear()
    try:
        with pytest.raises(ValueError, match="line 1: no look-around"):
            S.retail_phrases()
    finally:
        monkeypatch.undo()
        S.retail_phrases.cache_clear()


@pytest.mark.parametrize(
    "pattern", [r"rude(?= staff)", r"(?<!not )rude", r"^rude", r"rude$", r"\brude", r"a\Bb", r"\Arude"]
)
def test_phrase_file_refuses_what_depends_on_the_text_around(monkeypatch: pytest.MonkeyPatch, pattern: str) -> None:
    monkeypatch.setattr(S, "_data", lambda name: f"{pattern}\t-2\n")
    S.retail_phrases.cache_clear()
    try:
        with pytest.raises(ValueError, match="line 1: no look-around, anchors"):
            S.retail_phrases()
    finally:
        monkeypatch.undo()
        S.retail_phrases.cache_clear()


@pytest.mark.parametrize("pattern", [r"queue[^s]", r"\$5 off", r"price[$]", r"x[\]^]y", r"no (?P<w>wait)"])
def test_phrase_file_takes_classes_and_escapes(monkeypatch: pytest.MonkeyPatch, pattern: str) -> None:
    monkeypatch.setattr(S, "_data", lambda name: f"{pattern}\t-2\n")
    S.retail_phrases.cache_clear()
    try:
        assert S.retail_phrases() == [(pattern, -2.0)]
    finally:
        monkeypatch.undo()
        S.retail_phrases.cache_clear()
