"""The short variant of `make bench-notifier`, inside `make test`: it keeps running, delivers every
message, and keeps its JSON keys."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_a_short_notifier_benchmark_runs_and_reports_ratios(database_url: str) -> None:
    with tempfile.TemporaryDirectory(prefix="npsloop-bench-notifier-") as tmp:
        out = Path(tmp) / "notifier.json"
        argv = [sys.executable, "-m", "bench.notifier", "--n", "100", "--database-url", database_url]
        run = subprocess.run([*argv, "--result-file", str(out)], cwd=REPO, capture_output=True, text=True, timeout=240)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        result = json.loads(out.read_text())
    assert set(result["per_s"]) == {
        "raw_httpx_post",
        "raw_aiohttp_post",
        "notifier_webhook",
        "notifier_call_task",
        "raw_aiosmtplib_send",
        "raw_aiosmtplib_send_800b",
        "raw_smtp_transaction",
        "notifier_email",
    }
    assert all(v > 0 for v in result["per_s"].values())
    assert set(result["targets"]) == {"webhook_vs_httpx", "call_task_vs_httpx", "email_vs_aiosmtplib"}
    assert set(result["stricter"]) == {"webhook_vs_aiohttp", "call_task_vs_aiohttp", "email_vs_aiosmtplib_800b"}
    assert all(r > 0 for r in result["ratios"].values()) and "notifier emails" in run.stdout
    # the same-bytes row sends the notifier's own composed mail, bigger than the 800 B one
    assert result["message_bytes"]["raw_aiosmtplib_send"] > result["message_bytes"]["raw_aiosmtplib_send_800b"]
    assert set(result["cpu_us_per_delivery"]["bench"]) == set(result["per_s"])
