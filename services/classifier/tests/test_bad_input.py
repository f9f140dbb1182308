"""The bad input of issue 8: each is classified (or dead-lettered with a reason), none crashes or stalls."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from npsloop_classifier.handlers import Classifier, classify
from npsloop_classifier.sentiment import CHUNK, MAX_EMOJI, Ensemble, chunks
from npsloop_schemas import FeedbackReceivedV1, SentimentLabel

CASES = {
    "empty": ("", None, None),
    "blank": ("   \n\t ", None, None),
    "emoji-only": ("👍👍😀", None, SentimentLabel.POSITIVE),
    "sad emoji": ("😞😞", None, SentimentLabel.NEGATIVE),
    "html": ("<p>The <b>staff</b> were <i>lovely</i> &amp; helpful</p><script>x()</script>", "en", SentimentLabel.POSITIVE),
    "mixed language": ("Great staff, aber die Preise sind viel zu hoch und die Schlange war lang", "de", SentimentLabel.UNKNOWN),
    "cyrillic": ("Очень грубый персонал и долгая очередь", "ru", SentimentLabel.UNKNOWN),
    "cjk": ("店员很友好，但是排队时间太长了", "zh", SentimentLabel.UNKNOWN),  # noqa: RUF001
    "arabic": ("الموظفون كانوا رائعين لكن الانتظار كان طويلا", "ar", SentimentLabel.UNKNOWN),
    "only markup": ("<br/><br/>", None, None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_classified(name: str, classifier: Classifier, received: Callable[..., FeedbackReceivedV1]) -> None:
    comment, language, label = CASES[name]
    out = classify(received(4, comment), classifier, "c").payload
    assert out.language == language
    assert (out.sentiment.label if out.sentiment else None) == label
    assert out.feedback.comment == comment  # nothing to redact: kept byte for byte


def test_html_is_read_as_text_and_tags_name_no_theme(classifier: Classifier, received: Callable[..., FeedbackReceivedV1]) -> None:
    out = classify(received(9, "<div class='app'><p>Great staff</p></div>"), classifier, "c").payload
    assert out.themes == ["staff"]  # the attribute 'app' in a tag is not the app theme


def test_5000_characters(classifier: Classifier, received: Callable[..., FeedbackReceivedV1]) -> None:
    comment = ("The staff were friendly but the queue was long and the prices too high. " * 80)[:5000]
    assert len(comment) == 5000
    out = classify(received(5, comment), classifier, "c").payload
    assert out.language == "en" and out.sentiment is not None
    assert {"staff", "waiting_time", "price"} <= set(out.themes)
    labels = {t.theme: t.label for t in out.theme_sentiments}
    assert labels["staff"] == "positive" and labels["waiting_time"] == "negative"


def test_5000_digits_and_symbols(classifier: Classifier, received: Callable[..., FeedbackReceivedV1]) -> None:
    comment = ("1234 5678 " * 500)[:5000]
    out = classify(received(5, comment), classifier, "c").payload
    assert out.sentiment is not None and out.sentiment.label is SentimentLabel.NEUTRAL
    assert out.language is None and out.themes == [] and out.feedback.comment == comment


@pytest.mark.parametrize(
    "comment",
    ["😀" * 5000, "😀😡" * 2500, "x" * 5000, "good " * 1000, ("The staff were great. " * 250)[:5000], "! " * 2500],
)
def test_long_input_reaches_vader_in_bounded_pieces(
    classifier: Classifier, received: Callable[..., FeedbackReceivedV1], comment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VADER's work grows with the square of a text's words: it must never see a 5,000-character text."""
    model = classifier.sentiment
    assert isinstance(model, Ensemble)
    analyzer = model.vader._analyzer
    seen: list[str] = []
    original = analyzer.polarity_scores

    def recording(text: str) -> dict[str, float]:
        seen.append(text)
        return original(text)

    monkeypatch.setattr(analyzer, "polarity_scores", recording)
    out = classify(received(5, comment), classifier, "c").payload
    assert out.sentiment is not None and seen
    assert max(len(t) for t in seen) <= CHUNK
    emoji = sum(1 for t in seen for ch in t if ch in analyzer.emojis)
    assert emoji <= MAX_EMOJI * 2  # the overall text, and the clauses of the themes (none here)


def test_chunks_cut_at_sentence_ends_and_spaces() -> None:
    text = "One two three. " * 30 + "x" * 700
    parts = chunks(text)
    assert all(len(p) <= CHUNK for p in parts) and "".join(parts).replace(" ", "") == text.replace(" ", "")
    assert parts[0].endswith("three.")
