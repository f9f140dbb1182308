from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench.classifier import eval_sentiment
from bench.classifier.metrics import f1_scores
from bench.classifier.train_sentiment import fit
from npsloop_classifier.sentiment import Calibrated, Calibration, Ensemble, Vader, default_model, model_named
from npsloop_schemas import SentimentLabel


def test_model_names() -> None:
    assert isinstance(model_named("ensemble"), Ensemble) and default_model() is model_named("ensemble-tiebreak")
    assert isinstance(model_named("calibrated"), Calibrated) and isinstance(model_named("vader"), Vader)
    with pytest.raises(ValueError, match="unknown sentiment model"):
        model_named("bert")


def test_calibrated_variant_reads_its_shipped_weights() -> None:
    model = model_named("calibrated")
    assert isinstance(model, Calibrated)
    assert len(model.calibration.trained_on) == 3 and set(model.calibration.weights) == set(model.features("x"))
    assert model("The staff were wonderful").label is SentimentLabel.POSITIVE
    assert model("Terrible, rude and dirty").label is SentimentLabel.NEGATIVE
    assert model("I come here every week").label is SentimentLabel.NEUTRAL  # no evidence: neutral


def test_fit_recovers_known_weights() -> None:
    rng = random.Random(7)
    truth = {"bias": -0.1, "a": 0.5, "b": -0.25}
    xs = [{"bias": 1.0, "a": rng.uniform(-1, 1), "b": rng.uniform(-1, 1)} for _ in range(500)]
    ys = [sum(truth[k] * x[k] for k in x) + rng.gauss(0, 0.01) for x in xs]
    weights = fit(xs, ys, ridge=0.0)
    assert weights == pytest.approx(truth, abs=0.01)
    assert Calibration("t", [], weights).rating({"bias": 1.0, "a": 1.0, "b": 0.0}) == pytest.approx(0.4, abs=0.02)


def test_f1_scores() -> None:
    s = f1_scores(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    assert s.per_class == pytest.approx({"a": 2 / 3, "b": 0.8}) and s.macro == pytest.approx((2 / 3 + 0.8) / 2)
    assert s.weighted == pytest.approx(0.5 * 2 / 3 + 0.5 * 0.8) and s.support == {"a": 2, "b": 2}


def test_eval_sentiment_holds_out_each_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = {
        "a": ["great staff\t2.5", "awful queue\t-2.0", "nice\t1.0", "bad service\t-1.5"],
        "b": ["lovely shop\t3.0", "terrible prices\t-3.0", "fine\t0.5", "rude\t-2.0"],
        "c": ["wonderful\t3.1", "dirty\t-1.9", "good value\t1.8", "broken\t-2.2"],
    }
    for name, rows in lines.items():
        (tmp_path / f"{name}_GroundTruth.txt").write_text(
            "".join(f"{i}\t{r.split(chr(9))[1]}\t{r.split(chr(9))[0]}\n" for i, r in enumerate(rows))
        )
    extra = tmp_path / "extra.txt"
    extra.write_text("1\t2.0\tgreat help\n2\t-2.0\tawful mess\n")
    assert eval_sentiment.main(["--data", str(tmp_path), "--set", str(extra)]) == 0
    out = capsys.readouterr().out
    assert "calib fitted on b_GroundTruth.txt and c_GroundTruth.txt" in out
    assert "calib = the shipped weights" in out and out.count("weighted-F1") >= 4 * 2 * 4
    assert "default - vader" in out
    # the default's n-gram model (and the ngram variant's, the same) is fitted held out too
    assert out.count("the n-gram model (band") == 3 and "the n-gram model and calib = the shipped weights" in out
    for row in ("default ", "lexicons", "ngram   "):
        assert out.count(f"{row} weighted-F1") == 4 * 2, row
