"""`npsloop import` against a running `npsloop run` (its own process, real HTTP): a CSV with a
column mapping, rejects with line numbers, and a re-run that doubles nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from npsloop_platform.testing.helpers import dev_keys, npsloop_run


def test_import_maps_columns_reports_rejects_and_reruns_without_doubling(database_url: str) -> None:
    data = Path(tempfile.mkdtemp(prefix="npsloop-import-"))
    try:
        with npsloop_run(database_url, data / "run") as base:
            run_imports(base, data)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def run_imports(base: str, data: Path) -> None:
    keys = dev_keys(data / "run")
    export = data / "export.csv"
    lines = ["NPS,Kommentar,Filiale,Kunde,Mail"]
    lines += [f"{i % 11},gut {i},berlin-1,c-{i},c{i}@example.com" for i in range(1200)]
    lines[5] = "elf,kaputt,berlin-1,c-x,"  # line 6 of the file: not a score
    lines[9] = "12,zu hoch,berlin-1,c-y,"  # line 10: out of range
    export.write_text("\n".join(lines) + "\n")
    cmd = [sys.executable, "-m", "npsloop.cli", "import", str(export), "--url", base, "--set", "channel=pos"]
    cmd += ["--map", "score=NPS", "--map", "comment=Kommentar", "--map", "store_id=Filiale"]
    cmd += ["--map", "customer_id=Kunde", "--map", "contact.email=Mail"]
    run_env = {**os.environ, "NPSLOOP_API_KEY": keys["NPSLOOP_SOURCE_KEY"]}
    first = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 1, first.stderr  # 1: some rows were rejected
    assert "1200 rows" in first.stdout and "1198 accepted, 0 duplicates, 2 rejected" in first.stdout
    assert "rows/s" in first.stderr  # progress, as plain lines when not on a terminal
    rejects = [json.loads(line) for line in Path(f"{export}.rejects").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [6, 10]
    assert rejects[1]["errors"][0]["loc"][-1] == "score"

    again = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=120)
    assert "0 accepted, 1198 duplicates, 2 rejected" in again.stdout, again.stdout  # nothing doubles
    no_key = subprocess.run(cmd, env={**os.environ, "NPSLOOP_API_KEY": ""}, capture_output=True, text=True)
    assert no_key.returncode == 2 and "NPSLOOP_API_KEY" in no_key.stderr
