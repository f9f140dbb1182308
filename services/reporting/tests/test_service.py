"""The reporting service on its own, as its image runs it: `uvicorn --factory
npsloop_reporting.main:create_app`, ready, keyed, with its own dashboard sessions."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from npsloop_platform.testing.helpers import bearer, make_key
from npsloop_platform.testing.servers import free_port


async def test_the_service_runs_alone(database_url: str, stores_file: Path) -> None:
    manager = await make_key(database_url, "manager", "acme")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "NPSLOOP_BUS": "memory",
        "NPSLOOP_LOG_LEVEL": "WARNING",
        "NPSLOOP_STORES_FILE": str(stores_file),
        "NPSLOOP_SESSION_SECRET": "s" * 32,
    }
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "npsloop_reporting.main:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    # a server process that outlives this call, stopped in `finally`
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: ASYNC220
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "exited"
                try:
                    ready = await http.get("/readyz")
                    if ready.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "not ready in time"
                await asyncio.sleep(0.3)
            checks = ready.json()["checks"]
            assert checks["consumer:reporting"] and checks["digest-scheduler"] and checks["migrations:reporting"]
            nps = await http.get("/v1/reports/nps", headers=bearer(manager))
            assert nps.status_code == 200 and nps.json()["empty"] is True
            assert (await http.get("/v1/reports/nps")).status_code == 401
            login = await http.post("/login", data={"key": manager})
            assert login.status_code == 303 and "npsloop_session" in login.cookies
            http.cookies.set("npsloop_session", login.cookies["npsloop_session"])
            page = await http.get("/")
            assert page.status_code == 200 and "No answers in" in page.text
    finally:
        proc.terminate()
        proc.wait(20)
