"""Bad input at start, as an operator meets it: a service process that refuses to start names what
is wrong; one whose broker is unreachable stays alive (liveness 200), not ready (503), retrying."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from npsloop.stack.procs import pid_alive, service_argv, spawn_detached, stop_pids, tail
from npsloop.stack.services import BY_NAME
from npsloop_platform.testing.helpers import eventually
from npsloop_platform.testing.servers import free_port

REPO = Path(__file__).resolve().parents[1]


def clean_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPSLOOP_") and k != "DATABASE_URL"}
    return env | {"NPSLOOP_LOG_JSON": "false"} | settings


def start_fails(service: str, env: dict[str, str]) -> str:
    argv = service_argv(BY_NAME[service], free_port())
    run = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    return run.stdout + run.stderr


def test_a_missing_database_url_stops_the_start_naming_the_variable() -> None:
    out = start_fails("actions", clean_env())
    assert "DATABASE_URL" in out and "Field required" in out


def test_a_placeholder_secret_in_prod_mode_stops_the_start_without_echoing_it() -> None:
    env = clean_env(
        NPSLOOP_MODE="prod",
        DATABASE_URL="postgresql://npsloop:Real-Pa55word@127.0.0.1:5432/npsloop",
        NPSLOOP_SMTP_PASSWORD="CHANGEME",
    )
    out = start_fails("notifier", env)
    assert "NPSLOOP_SMTP_PASSWORD" in out and "placeholder" in out
    assert "CHANGEME" not in out and "Real-Pa55word" not in out


@pytest.mark.slow
async def test_an_unreachable_broker_keeps_the_service_alive_not_ready_and_retrying(tmp_path: Path) -> None:
    port, dead_broker = free_port(), f"127.0.0.1:{free_port()}"
    env = clean_env(NPSLOOP_KAFKA_BOOTSTRAP=dead_broker, NPSLOOP_MODE="prod", NPSLOOP_LOG_LEVEL="INFO")
    log = tmp_path / "classifier.log"
    pid = spawn_detached(service_argv(BY_NAME["classifier"], port), env, log, tmp_path / "classifier.pid")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def answers() -> bool:
                assert pid_alive(pid), tail(log)
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(answers, timeout=60, what="the classifier answering /healthz")
            for _ in range(3):  # it stays so: alive, not ready
                assert (await http.get("/healthz")).status_code == 200
                ready = await http.get("/readyz")
                assert ready.status_code == 503 and ready.json()["checks"]["kafka"] is False
                await asyncio.sleep(1)
            assert pid_alive(pid)
        assert "kafka producer connect" in log.read_text(), tail(log)  # the retries are logged
    finally:
        assert stop_pids({"classifier": pid}, timeout=30)["classifier"] == "stopped"
