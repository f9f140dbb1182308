from collections.abc import Callable

import pytest

from npsloop_classifier.handlers import Classifier, classified_event_id, classify, reclassified_event_id, reclassify
from npsloop_classifier.sentiment import Ensemble, Vader, default_model, label_for
from npsloop_schemas import Band, FeedbackReceivedV1, FeedbackUpdatedV1, Sentiment, SentimentLabel, derive_id


def fixed(label: SentimentLabel, compound: float) -> object:
    return lambda text: Sentiment(label=label, compound=compound, model="fake")


def test_band_lineage_themes_and_theme_sentiments(
    classifier: Classifier, received: Callable[..., FeedbackReceivedV1]
) -> None:
    event = received(2, "The cashier was rude and the queue took forever")
    out = classify(event, classifier, "classifier")
    assert out.payload.band is Band.DETRACTOR
    assert out.event_id == classified_event_id(event.event_id) == classify(event, classifier, "x").event_id
    assert out.causation_id == event.event_id and out.correlation_id == event.correlation_id
    assert out.payload.feedback == event.payload
    assert out.payload.themes == ["staff", "waiting_time"]
    assert out.payload.language == "en"
    assert out.payload.sentiment is not None and out.payload.sentiment.label is SentimentLabel.NEGATIVE
    assert out.payload.sentiment.model == default_model().name
    assert {t.theme: t.label for t in out.payload.theme_sentiments} == {"staff": "negative", "waiting_time": "negative"}


def test_each_theme_gets_the_sentiment_of_its_own_clause(
    classifier: Classifier, received: Callable[..., FeedbackReceivedV1]
) -> None:
    out = classify(received(6, "friendly staff but the queue was endless"), classifier, "c").payload
    assert {t.theme: t.label for t in out.theme_sentiments} == {"staff": "positive", "waiting_time": "negative"}
    out = classify(received(7, "Great prices, but the app keeps crashing and delivery was late"), classifier, "c")
    labels = {t.theme: t.label for t in out.payload.theme_sentiments}
    assert labels == {"price": "positive", "app_website": "negative", "delivery": "negative"}


def test_no_comment_means_no_sentiment(classifier: Classifier, received: Callable[..., FeedbackReceivedV1]) -> None:
    out = classify(received(10), classifier, "c")
    assert out.payload.band is Band.PROMOTER and out.payload.sentiment is None and out.payload.themes == []
    assert out.payload.language is None and out.payload.theme_sentiments == []


def test_flags(received: Callable[..., FeedbackReceivedV1]) -> None:
    neg = Classifier(fixed(SentimentLabel.NEGATIVE, -0.8))  # type: ignore[arg-type]
    pos = Classifier(fixed(SentimentLabel.POSITIVE, 0.8))  # type: ignore[arg-type]
    assert "score_sentiment_mismatch" in classify(received(10, "meh"), neg, "c").payload.flags
    assert "score_sentiment_mismatch" in classify(received(1, "meh"), pos, "c").payload.flags
    assert "score_sentiment_mismatch" not in classify(received(8, "meh"), neg, "c").payload.flags
    assert "urgent" in classify(received(1, "I will never shop here again"), neg, "c").payload.flags
    assert "urgent" in classify(received(3, "Please call me back about it"), neg, "c").payload.flags
    assert "urgent" not in classify(received(3, "The queue was long"), neg, "c").payload.flags
    assert "no_contact" in classify(received(1, None, consent=False), neg, "c").payload.flags


def test_pii_is_redacted_in_the_published_comment(
    classifier: Classifier, received: Callable[..., FeedbackReceivedV1]
) -> None:
    comment = (
        "Refund to DE89 3704 0044 0532 0130 00 or mail ann@example.com, call +49 151 1234567, card 4111 1111 1111 1111"
    )
    event = received(2, comment)
    out = classify(event, classifier, "c").payload
    assert "contains_pii" in out.flags
    assert out.feedback.comment == "Refund to [iban] or mail [email], call [phone], card [card]"
    assert event.payload.comment == comment  # the input is left as it was
    assert out.feedback.model_copy(update={"comment": comment}) == event.payload
    clean = classify(received(7, "Visited on 2026-11-23, paid 12.50, order 12345678"), classifier, "c").payload
    assert (
        "contains_pii" not in clean.flags
        and clean.feedback.comment == "Visited on 2026-11-23, paid 12.50, order 12345678"
    )


def test_another_language_is_unknown_never_a_guess(
    classifier: Classifier, received: Callable[..., FeedbackReceivedV1]
) -> None:
    out = classify(
        received(2, "Die Mitarbeiter waren sehr unfreundlich und die Kasse war geschlossen"), classifier, "c"
    )
    assert out.payload.language == "de"
    assert out.payload.sentiment is not None and out.payload.sentiment.label is SentimentLabel.UNKNOWN
    assert "staff" in out.payload.themes  # the taxonomy carries German synonyms
    assert all(t.label is SentimentLabel.UNKNOWN for t in out.payload.theme_sentiments)


def test_updated_comment_is_reclassified_with_a_derived_id(
    classifier: Classifier, received: Callable[..., FeedbackReceivedV1], updated: Callable[..., FeedbackUpdatedV1]
) -> None:
    original = received(3)
    update = updated(original, "Rude staff. Call me on 07700 900123", consent_to_contact=False)
    out = reclassify(update, classifier, "c")
    assert out.event_id == reclassified_event_id(update.event_id) == derive_id("feedback.reclassified", update.event_id)
    assert out.causation_id == update.event_id and out.correlation_id == original.correlation_id
    p = out.payload
    assert p.feedback_event_id == original.event_id and p.update_event_id == update.event_id
    assert p.update.comment == "Rude staff. Call me on [phone]"
    assert set(p.flags) == {"contains_pii", "urgent", "no_contact"}
    assert p.themes == ["staff"] and p.language == "en"
    assert p.sentiment is not None and p.sentiment.label is SentimentLabel.NEGATIVE
    no_comment = reclassify(updated(original, None), classifier, "c").payload
    assert no_comment.sentiment is None and no_comment.themes == []


def test_default_model_is_the_ensemble_and_keeps_vader_thresholds() -> None:
    model = default_model()
    assert isinstance(model, Ensemble) and model is default_model()
    assert model("Overpriced and the app is glitchy").label is SentimentLabel.NEGATIVE
    assert Vader()("Overpriced and the app is glitchy").label is SentimentLabel.NEUTRAL  # what the lexicon adds
    assert model("The staff went above and beyond").label is SentimentLabel.POSITIVE


@pytest.mark.parametrize(("compound", "label"), [(0.05, "positive"), (0.0499, "neutral"), (-0.05, "negative")])
def test_vader_thresholds(compound: float, label: str) -> None:
    assert label_for(compound) == label


def test_ngram_fallback_decides_only_where_the_lexicons_find_nothing() -> None:
    from npsloop_classifier.sentiment import NgramWeights, model_named, ngrams

    text = "We came by train on Tuesday"  # no lexicon word: the lexicons alone say neutral
    lexicons = model_named("ensemble")
    assert isinstance(lexicons, Ensemble) and lexicons(text).label is SentimentLabel.NEUTRAL
    street = ngrams("tuesday")[0]
    for weight, label in (
        (5.0, SentimentLabel.POSITIVE),
        (-5.0, SentimentLabel.NEGATIVE),
        (0.1, SentimentLabel.NEUTRAL),
    ):
        model = Ensemble(ngram=NgramWeights("t1", [], 0.25, {}, {street: weight}))
        out = model(text)
        assert out.label is label and abs(out.compound) <= 0.1, (weight, out)
        assert out.model == model.name and "ngram-t1" in model.name and model.name != lexicons.name
        # where the lexicons do find sentiment, the fallback has no say
        assert model("The staff went above and beyond").label is SentimentLabel.POSITIVE
    assert ngrams("not good") != ngrams("good") and ngrams("not good")[-1] != ngrams("good")[0]


def test_shipped_ngram_fallback_loads_and_is_named() -> None:
    from npsloop_classifier.sentiment import model_named

    model = model_named("ensemble-ngram")
    assert isinstance(model, Ensemble) and model.ngram is not None and model.ngram.buckets
    assert set(model.ngram.trained_on)
    assert model.name.startswith("npsloop-ensemble-3") and f"ngram-{model.ngram.version}" in model.name
    # the default asks the same n-gram model only where lexicon words cancel: no evidence is
    # neutral, never a guess
    default = default_model()
    assert default is model_named("ensemble-tiebreak") and default.tie_break
    assert default.ngram is not None and default.ngram.buckets == model.ngram.buckets
    assert default.name != model.name and "tie-break" in default.name
    lexicons = model_named("ensemble")
    assert isinstance(lexicons, Ensemble) and lexicons.ngram is None and lexicons.name.startswith("npsloop-ensemble-2")
    for fact in ("The parcel arrived.", "Delivered on Monday", "Bought milk and bread."):
        assert default(fact).label is SentimentLabel.NEUTRAL, fact


def test_tie_break_decides_only_where_lexicon_words_cancel() -> None:
    from npsloop_classifier.sentiment import NgramWeights, has_evidence, model_named, ngrams

    cancel, nothing = "love it hate it on Tuesday", "We came by train on Tuesday"
    lexicons = model_named("ensemble")
    assert isinstance(lexicons, Ensemble)
    assert has_evidence(lexicons.features(cancel)) and lexicons(cancel).label is SentimentLabel.NEUTRAL
    assert not has_evidence(lexicons.features(nothing)) and lexicons(nothing).label is SentimentLabel.NEUTRAL
    tuesday = ngrams("tuesday")[0]
    for weight, label in ((5.0, SentimentLabel.POSITIVE), (-5.0, SentimentLabel.NEGATIVE)):
        weights = NgramWeights("t1", [], 0.25, {}, {tuesday: weight})
        tie_break = Ensemble(ngram=weights, tie_break=True)
        assert tie_break(cancel).label is label, weight  # words that cancel: the n-grams decide
        assert tie_break(nothing).label is SentimentLabel.NEUTRAL  # no sentiment word: no guess
        assert Ensemble(ngram=weights)(nothing).label is label  # ensemble-ngram does guess there
        assert "tie-break" in tie_break.name and "tie-break" not in Ensemble(ngram=weights).name
    shipped = model_named("ensemble-tiebreak")
    assert isinstance(shipped, Ensemble) and shipped.tie_break and shipped.ngram is not None
    for fact in ("The parcel arrived.", "Delivered on Monday", "Bought milk and bread."):
        assert shipped(fact).label is SentimentLabel.NEUTRAL, fact
