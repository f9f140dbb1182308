"""The short variant of `make bench-classifier`, inside `make test`: 1,000 events through the
classifier and the pass-through hop on the test broker, so that the benchmark keeps working and
its JSON keys stay. No speed is asserted here; the targets belong to the benchmark's report."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.kafka
def test_a_small_classifier_benchmark_runs_and_keeps_its_json_keys(kafka_bootstrap: str) -> None:
    with tempfile.TemporaryDirectory(prefix="npsloop-bench-classifier-") as tmp:
        out = Path(tmp) / "result.json"
        argv = [sys.executable, "-m", "bench.classifier.bench", "--events", "1000", "--rounds", "2"]
        argv += ["--bootstrap", kafka_bootstrap, "--timeout", "120", "--result-file", str(out)]
        run = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=240)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        result = json.loads(out.read_text())
    assert result["model_time"]["comments_per_s"] > 0
    assert set(result["model_time"]["stages_us"]) == {"pii_redaction", "language", "sentiment", "themes_with_clause_sentiment"}
    k = result["kafka"]
    assert k["classifier_events_per_s"] > 0 and k["passthrough_events_per_s"] > 0 and k["ratio"] > 0
    assert len(k["rounds"]["pt"]) == len(k["rounds"]["cl"]) == 3  # in turn, each on the whole backlog
    assert k["classifier_events_per_s"] == max(k["rounds"]["cl"]) and k["ratio_median_of_rounds"] > 0
    assert set(k["publish_cpu_us_per_event"]) == {"send_each_us", "publish_many_us"}
    assert set(result["targets"]) == {"model_comments_per_s_one_core", "kafka_ratio_vs_passthrough"}
