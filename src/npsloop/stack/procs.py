"""Service processes on one machine: their command line and environment, detached start with a
pid file, readiness, stop by pid. `make up`, the benchmark and the process tests share these."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .services import ServiceSpec

REPO = Path(__file__).resolve().parents[3]


def service_argv(spec: ServiceSpec, port: int, *, python: str = sys.executable, quiet: bool = True) -> list[str]:
    """uvicorn serving the service's app factory on 127.0.0.1:`port`."""
    argv = [python, "-m", "uvicorn", "--factory", spec.app, "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-level", "warning", "--no-access-log"] if quiet else []
    return argv


def service_env(
    spec: ServiceSpec,
    *,
    bootstrap: str,
    database_url: str | None,
    prefix: str = "",
    settings: Mapping[str, str] | None = None,
    inherit_npsloop: bool = False,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of one service process: the parent's (without its NPSLOOP_* and DATABASE_URL
    unless `inherit_npsloop`), the bus and database, dev mode, then `settings` (NPSLOOP_* names)."""
    source = os.environ if base is None else base
    env = {
        k: v
        for k, v in source.items()
        if inherit_npsloop or (not k.startswith("NPSLOOP_") and k not in ("DATABASE_URL", "VIRTUAL_ENV_PROMPT"))
    }
    env.update(
        NPSLOOP_BUS="kafka",
        NPSLOOP_KAFKA_BOOTSTRAP=bootstrap,
        NPSLOOP_TOPIC_PREFIX=prefix,
        PYTHONUNBUFFERED="1",
    )
    env.setdefault("NPSLOOP_MODE", "dev")  # loopback URLs and a socket database without a password
    if database_url and spec.database:
        env["DATABASE_URL"] = database_url
    env.update(settings or {})
    return env


# ------------------------------------------------------------------------------- pid files --


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped) is not alive
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if fields and fields[0] == "Z":
            return False
    return True


def read_pid(pidfile: Path, must_contain: str | None = None) -> int | None:
    """The pid in `pidfile` if that process runs (and its command line holds `must_contain`);
    a stale pid file is removed."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid_alive(pid) and (must_contain is None or must_contain in cmdline(pid)):
        return pid
    pidfile.unlink(missing_ok=True)
    return None


def spawn_detached(argv: Sequence[str], env: Mapping[str, str], log_path: Path, pidfile: Path) -> int:
    """Start `argv` in a session of its own (it outlives the caller), output appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def stop_pids(pids: Mapping[str, int], timeout: float = 30, sig: int = signal.SIGTERM) -> dict[str, str]:
    """Signal every pid at once (they drain in parallel), wait up to `timeout`, then SIGKILL."""
    outcome: dict[str, str] = {}
    for name, pid in pids.items():
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            outcome[name] = "not running"
    deadline = time.monotonic() + timeout
    waiting = {n: p for n, p in pids.items() if n not in outcome}
    while waiting and time.monotonic() < deadline:
        for name, pid in list(waiting.items()):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
            if not pid_alive(pid):
                outcome[name] = "stopped"
                del waiting[name]
        time.sleep(0.1)
    for name, pid in waiting.items():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        outcome[name] = f"killed (ignored SIGTERM for {timeout:.0f}s)"
    return outcome


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def wait_ready(
    name: str, url: str, alive: Callable[[], bool], timeout: float, log_path: Path | None = None
) -> float:
    """Poll `url` (a /readyz) until it answers 200; fail at once when the process died."""
    import httpx

    t0 = time.monotonic()
    last = ""
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() - t0 < timeout:
            if not alive():
                where = f"; last lines of {log_path}:\n{tail(log_path)}" if log_path else ""
                raise RuntimeError(f"{name} exited before it was ready{where}")
            try:
                r = await client.get(url)
                if r.status_code == 200:
                    return time.monotonic() - t0
                last = f"HTTP {r.status_code} {r.text[:300]}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            await asyncio.sleep(0.25)
    where = f"; last lines of {log_path}:\n{tail(log_path)}" if log_path else ""
    raise RuntimeError(f"{name} not ready after {timeout:.0f}s ({last}){where}")


async def readiness(url: str) -> tuple[int | None, str]:
    """(HTTP status, body) of a /readyz, (None, reason) when nothing answers."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=3) as client:
            r = await client.get(url)
        return r.status_code, r.text
    except httpx.HTTPError as exc:
        return None, type(exc).__name__


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0
