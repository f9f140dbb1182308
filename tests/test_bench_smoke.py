"""The short variant of `make bench`, inside `make test`: the whole benchmark on a small load, so
that the benchmark itself keeps working and its JSON keys stay what other tools read."""

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
def test_a_small_benchmark_runs_exactly_once_and_keeps_its_json_keys() -> None:
    with tempfile.TemporaryDirectory(prefix="npsloop-bench-smoke-") as tmp:
        out = Path(tmp) / "result.json"
        argv = [sys.executable, "-m", "bench.e2e", "--events", "300", "--sustained-rate", "60"]
        argv += ["--sustained-seconds", "5", "--timeout", "240", "--result-file", str(out)]
        run = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        result = json.loads(out.read_text())
    assert result["ok"] is True
    p = result["pipeline"]
    assert p["events_per_s"] > 0 and set(p["cpu_s"]) >= {"ingest", "classifier", "actions", "notifier", "kafka"}
    assert {"ack_to_case_stored", "ack_to_email_received", "ack_to_call_task_received"} <= set(p["latency_ms"])
    assert p["latency_ms"]["ack_to_email_received"]["n"] == 100
    assert p["cpu_ms_per_event"]["total"] > 0
    assert result["ratios"]["throughput"] > 0
    sustained = result["sustained"]
    assert sustained["accepted"] == 300 and sustained["latency_ms"]["ack_to_call_task_received"]["n"] == 100
    assert set(result["targets"]) and all("met" in t for t in result["targets"].values())
