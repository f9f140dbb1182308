"""`make up` / `make status` / `make down` as a person runs them: every service its own process on
real Kafka and PostgreSQL, one feedback through to the mail dir, a second `up` reuses what runs,
`down` stops each process by its pid."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from npsloop.stack.procs import pid_alive
from npsloop.stack.services import SERVICES, installed_services
from npsloop_platform.testing.helpers import eventually
from npsloop_platform.testing.servers import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]


def stack(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "npsloop.stack", *args]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def pids(data_dir: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in (data_dir / "stack").glob("*.pid")}


async def test_up_status_reuse_and_down(kafka_bootstrap: str, database_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPSLOOP_") and k != "DATABASE_URL"}
    env |= {
        "NPSLOOP_STACK_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "NPSLOOP_DATA_DIR": str(tmp_path),
        "NPSLOOP_TOPIC_PREFIX": f"stack{uuid.uuid4().hex[:8]}.",
    }
    ports = {s.name: free_port() for s in SERVICES}
    env |= {f"NPSLOOP_STACK_PORT_{name.upper()}": str(port) for name, port in ports.items()}
    try:
        up = stack(env, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        first = pids(tmp_path)
        assert set(first) == {s.name for s in installed_services()}
        assert all(pid_alive(pid) for pid in first.values())
        for spec in SERVICES:
            if not spec.installed():
                assert f"skipping {spec.name}" in up.stderr

        status = stack(env, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        lines = {ln.split()[0]: ln for ln in status.stdout.splitlines()[1:]}
        for spec in installed_services():
            assert str(first[spec.name]) in lines[spec.name] and str(ports[spec.name]) in lines[spec.name]
            assert "ready" in lines[spec.name] and "not ready" not in lines[spec.name]

        keys = dict(ln.split("=", 1) for ln in (tmp_path / "dev-keys.env").read_text().splitlines() if "=" in ln)
        async with httpx.AsyncClient() as client:
            r = await client.post(
                f"http://127.0.0.1:{ports['ingest']}/v1/feedback",
                headers={"Authorization": f"Bearer {keys['NPSLOOP_SOURCE_KEY']}"},
                json={"channel": "web", "score": 10, "customer_id": "c-1", "contact": {"email": "ann@example.com"}},
            )
            assert r.status_code == 202, r.text

            async def mailed() -> bool:
                return any((tmp_path / "mail" / "new").glob("*"))

            await eventually(mailed, timeout=60, what="the thank-you mail in the stack's mail dir")
            metrics = await client.get(f"http://127.0.0.1:{ports['notifier']}/metrics")
            assert metrics.status_code == 200

        again = stack(env, "up")
        assert again.returncode == 0, again.stdout + again.stderr
        assert pids(tmp_path) == first  # reused, not restarted
        assert again.stderr.count("already runs") == len(first)
    finally:
        down = stack(env, "down", timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(pid_alive(pid) for pid in first.values())
    assert pids(tmp_path) == {}
    after = stack(env, "status")
    assert after.returncode == 1 and "stopped" in after.stdout
