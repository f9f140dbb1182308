"""The short variant of `make bench-ingest`, inside `make test`: bare endpoint and ingest (single
posts, batches of 1,000, paced posts) on the session's Kafka and PostgreSQL, so that the benchmark
keeps starting and every phase keeps accepting everything it sends. Not its targets: those need a
full run on a quiet machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.kafka
def test_a_small_ingest_benchmark_runs_and_every_phase_accepts_everything(
    kafka_bootstrap: str, pg_server_url: str
) -> None:
    with tempfile.TemporaryDirectory(prefix="npsloop-bench-ingest-") as tmp:
        out = Path(tmp) / "result.json"
        argv = [sys.executable, "-m", "bench.ingest", "--events", "300", "--batches", "2", "--rate", "200"]
        argv += ["--rate-seconds", "1", "--timeout", "120", "--result-file", str(out)]
        env = os.environ | {"NPSLOOP_TEST_KAFKA_BOOTSTRAP": kafka_bootstrap, "DATABASE_URL": pg_server_url}
        run = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        result = json.loads(out.read_text())
    assert result["ok"] is True
    assert result["single_bare"]["accepted"] == 300 and result["single_bare"]["statuses"] == {"202": 300}
    assert result["single_ingest"]["accepted"] == 300 and result["single_ingest"]["statuses"] == {"202": 300}
    assert result["batches"] == result["batches"] | {"batches": 2, "accepted": 2000}
    assert result["paced"]["accepted"] == 200 and result["paced"]["statuses"] == {"202": 200}
    for phase in ("single_bare", "single_ingest", "batches", "paced"):
        assert result[phase]["events_per_s"] > 0 and result[phase]["latency_ms"]["p99"] > 0
    # single posts ran in alternating rounds (bare, ingest, ...), each round accepted by both
    assert result["single_bare"]["rounds"] == result["single_ingest"]["rounds"] == len(result["single_rounds"]) == 4
    assert all(r["bare"] > 0 and r["ingest"] > 0 for r in result["single_rounds"])
    assert set(result["targets"]) and all("met" in t for t in result["targets"].values())
    # Where each phase's CPU went (the session's broker and database are not the bench's own, so
    # they are not measured here): the process under load did work, the idle one next to nothing.
    cpu = {phase: result[phase]["cpu_us_per_event"] for phase in ("single_bare", "single_ingest", "batches", "paced")}
    assert cpu["single_bare"]["bare"] > 0 and cpu["single_ingest"]["ingest"] > cpu["single_ingest"]["bare"]
    assert cpu["single_bare"]["load generator"] > 0 and cpu["single_ingest"]["load generator"] > 0
    assert all(c["busy_cores"] > 0 for c in cpu.values())
    assert "kafka" not in cpu["batches"] and "postgres" not in cpu["batches"]
    # nor is the session's broker warmed up: its JIT compiler is not watched
    assert result["warm_up"] == {"rounds": 0, "seconds": 0.0, "jit_cores_last_round": None, "settled": None}
    assert "kafka jit" not in cpu["single_ingest"]
