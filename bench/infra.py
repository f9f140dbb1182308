"""The benchmark's infrastructure: child processes that die with it, service environments,
readiness, CPU accounting per process, and small database helpers."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from npsloop.stack import procs
from npsloop.stack.services import BY_NAME, installed_services

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / ".cache" / "bench"
# The pipeline the benchmark drives, from the stack's one list (a service not installed is left out).
SERVICES = tuple(s.name for s in installed_services() if s.name in ("ingest", "classifier", "actions", "notifier"))


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------- processes --

try:
    _LIBC: Any = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: never outlive the benchmark


class Child:
    """A child process with its output in a log file; stopped by pid (SIGTERM, then SIGKILL)."""

    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.name, self.log_path = name, log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            list(argv),
            env=env,
            cwd=cwd or REPO,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal_stop(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)

    def stop(self, timeout: float = 30) -> None:
        self.signal_stop()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"{self.name} (pid {self.pid}) ignored SIGTERM for {timeout}s; SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(10)
        if not self._log.closed:
            self._log.close()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Children:
    def __init__(self) -> None:
        self.all: list[Child] = []

    def spawn(
        self, name: str, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> Child:
        child = Child(name, argv, log_path, env, cwd)
        self.all.append(child)
        return child

    def stop(self, children: Sequence[Child] | None = None, timeout: float = 30) -> None:
        targets = [c for c in (children if children is not None else self.all)]
        for c in targets:  # SIGTERM all first, so they shut down in parallel
            c.signal_stop()
        for c in targets:
            c.stop(timeout)


# ----------------------------------------------------------------------------- cpu accounting --


class CpuMeter:
    """CPU seconds per component (process and its children) between `start()` and `stop()`."""

    def __init__(self) -> None:
        self.pids: dict[str, list[int]] = {}
        self._t0: dict[str, float] = {}
        self.used: dict[str, float] = {}
        self.wall = 0.0
        self._wall0 = 0.0
        self._recursive: set[str] = set()
        self.parts: dict[str, Any] = {}  # name -> () -> CPU seconds: a part of a process counted above

    def add_part(self, name: str, cpu: Any) -> None:
        """A part of a process already counted (a thread group), shown on its own, not added to the total."""
        self.parts[name] = cpu

    def add(self, name: str, pid: int | None, *, with_children: bool = False) -> None:
        """`with_children`: count its child processes too (Postgres backends); not for the benchmark
        itself, whose children are the services, counted on their own."""
        if pid:
            self.pids.setdefault(name, []).append(pid)
            if with_children:
                self._recursive.add(name)

    def _cpu(self, name: str) -> float:
        import psutil

        if name in self.parts:
            return float(self.parts[name]())

        total = 0.0
        for pid in self.pids.get(name, []):
            try:
                p = psutil.Process(pid)
                procs = [p, *(p.children(recursive=True) if name in self._recursive else [])]
            except psutil.Error:
                continue
            for q in procs:
                with contextlib.suppress(psutil.Error):
                    t = q.cpu_times()
                    total += t.user + t.system
            if name in self._recursive:  # children that already exited (and were reaped)
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.children_user + t.children_system
        return total

    def start(self) -> None:
        self._wall0 = time.monotonic()
        self._t0 = {name: self._cpu(name) for name in [*self.pids, *self.parts]}

    def stop(self) -> None:
        self.wall = time.monotonic() - self._wall0
        self.used = {name: self._cpu(name) - self._t0.get(name, 0.0) for name in [*self.pids, *self.parts]}


def jvm_compiler_cpu(pid: int | None) -> float:
    """CPU seconds the JVM's JIT compiler threads ("C1/C2 CompilerThread<n>") of `pid` have used.

    On 2 cores a fresh broker's C2 compiler takes up to ~40% of a core for its first ~20 s of
    traffic; a phase measured meanwhile pays for it."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    if not pid:
        return total
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return total
    for tid in tasks:
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if "CompilerThre" in name:
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def postgres_pid(data_dir: Path) -> int | None:
    pidfile = data_dir / "postmaster.pid"
    try:
        return int(pidfile.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def kafka_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "kafka.pid").read_text().strip())
    except (OSError, ValueError):
        return None


async def wait_ready(child: Child, url: str, timeout: float) -> float:
    return await procs.wait_ready(child.name, url, child.alive, timeout, child.log_path)


def service_argv(name: str, port: int) -> list[str]:
    return procs.service_argv(BY_NAME[name], port)


def service_env(name: str, *, bootstrap: str, prefix: str, db_url: str, sinks: dict[str, Any]) -> dict[str, str]:
    return procs.service_env(
        BY_NAME[name],
        bootstrap=bootstrap,
        database_url=db_url,
        prefix=prefix,
        settings={
            "NPSLOOP_SMTP_HOST": sinks["smtp_host"],
            "NPSLOOP_SMTP_PORT": str(sinks["smtp_port"]),
            "NPSLOOP_CALL_TASK_URL": sinks["call_task_url"],
            "NPSLOOP_CALL_QUIET_HOURS": "",  # the benchmark runs at any hour
            "NPSLOOP_LOG_JSON": "true",
            "NPSLOOP_RATE_LIMIT_PER_S": "1000000",  # the benchmark measures the loop, not the limiter
            "NPSLOOP_RATE_LIMIT_BURST": "1000000",
            "NPSLOOP_LOG_LEVEL": "WARNING",
        },
    )


@contextlib.contextmanager
def work_dir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="npsloop-bench-"))
    try:
        yield path
    finally:
        if keep:
            log(f"kept the work dir (logs, data): {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)
