"""The bad input of issue 8: each is classified (or dead-lettered with a reason), none crashes or stalls."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from npsloop_classifier.handlers import Classifier, classify
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
