"""schemathesis against the live embedded default (`npsloop run` as its own process, real
PostgreSQL): every operation of the OpenAPI document, with its examples, the coverage and fuzzing
phases and the stateful links (POST /v1/feedback -> PATCH /v1/feedback/{event_id}, keys created then
revoked). 0 server errors, 0 undocumented status codes, 0 responses or headers that violate the schema.

Checks left out, on purpose: `negative_data_rejection` (a batch answers 200 with a per-item
`rejected`, by design) and `positive_data_acceptance` (ingest's input is stricter than JSON Schema
can say: a control character in an email, a date a century away)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from npsloop_platform.testing.helpers import dev_keys, npsloop_run

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,"
CHECKS += "response_schema_conformance,response_headers_conformance"


def schemathesis(base: str, key: str, *extra: str) -> subprocess.CompletedProcess[str]:
    cli = Path(sys.executable).with_name("schemathesis")
    argv = [str(cli), "run", f"{base}/openapi.json", "-H", f"Authorization: Bearer {key}", "--checks", CHECKS]
    argv += ["--phases", "examples,coverage,fuzzing,stateful", "-w", "1", "--no-color", *extra]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "", "HYPOTHESIS_STORAGE_DIRECTORY": tempfile.mkdtemp()}
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env, check=False)


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_schema_violation(database_url: str) -> None:
    data = Path(tempfile.mkdtemp(prefix="npsloop-fuzz-"))
    try:
        with npsloop_run(database_url, data) as base:
            keys = dev_keys(data)
            run = schemathesis(base, keys["NPSLOOP_ADMIN_KEY"], "--max-examples", "25", "--seed", "7")
            report = run.stdout[-6000:] + run.stderr[-2000:]
            assert run.returncode == 0, report
            tested = [line for line in run.stdout.splitlines() if "Tested:" in line]
            assert tested and int(tested[0].split()[-1]) >= 11, report  # every operation, none forgotten
    finally:
        shutil.rmtree(data, ignore_errors=True)
