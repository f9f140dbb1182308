"""The fast variant of `make chaos` inside `make test`: ~2,000 events, one fault of each kind (each
service SIGKILLed once, Kafka and Postgres bounced, SMTP refusing, the CRM webhook answering 500
then timing out, poison), and every count exact. Keeps the harness from rotting."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FAST = ["--events", "2000", "--rate", "20", "--kills", "1", "--outage", "5", "--smtp-refuse", "8"]
FAST += ["--webhook-500", "6", "--webhook-timeout", "4", "--poison-batches", "1", "--stall", "60", "--timeout", "420"]


@pytest.mark.slow
@pytest.mark.kafka
def test_the_fast_chaos_run_loses_and_doubles_nothing() -> None:
    with tempfile.TemporaryDirectory(prefix="npsloop-chaos-smoke-") as tmp:
        out = Path(tmp) / "result.json"
        argv = [sys.executable, "-m", "bench.chaos", "--seed", "3", *FAST, "--result-file", str(out)]
        run = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=480)
        result = json.loads(out.read_text())
    assert run.returncode == 0 and result["ok"], run.stdout[-4000:] + run.stderr[-3000:]
    kinds = {f["kind"] for f in result["faults"]}
    assert kinds >= {"kafka", "postgres", "smtp", "webhook", "poison"}
    assert {k for k in kinds if k.startswith("kill:")} == {
        "kill:ingest",
        "kill:classifier",
        "kill:actions",
        "kill:notifier",
        "kill:reporting",
    }
    c = result["counts"]
    assert c["feedback_rows"] == c["expected"]["feedback_rows"] == result["load"]["accepted"] == 2000
    assert c["webhooks_received"] > 0 and c["poison_injected"] > 0 and c["log_lines_searched"] > 0
    assert all(f.get("restored") for f in result["faults"])
