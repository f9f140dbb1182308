"""The local stack: real Kafka, PostgreSQL and every service as its own process on 127.0.0.1.

    python -m npsloop.stack up [--tracing console|otlp]   (make up)
    python -m npsloop.stack status                        (make status)
    python -m npsloop.stack logs [--no-follow]            (make logs)
    python -m npsloop.stack down                          (make down)

Pid files and logs live in $NPSLOOP_DATA_DIR/stack (default .npsloop/stack). `up` is idempotent:
what runs is reused. Kafka is deploy/local/kafka.sh's broker; PostgreSQL is DATABASE_URL when set,
else the embedded server in $NPSLOOP_DATA_DIR/pg, the one `make run` and `npsloop keys` use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .lag import group_lag
from .procs import (
    REPO,
    port_open,
    read_pid,
    readiness,
    service_argv,
    service_env,
    spawn_detached,
    stop_pids,
    wait_ready,
)
from .services import SERVICES, ServiceSpec, installed_services, missing_services

KAFKA_SH = REPO / "deploy" / "local" / "kafka.sh"


def say(msg: str) -> None:
    print(f"stack: {msg}", file=sys.stderr, flush=True)


class Stack:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.dir = self.data_dir / "stack"
        self.env_file = self.dir / "stack.env"

    def pidfile(self, name: str) -> Path:
        return self.dir / f"{name}.pid"

    def log(self, name: str) -> Path:
        return self.dir / f"{name}.log"

    def port(self, spec: ServiceSpec) -> int:
        return int(os.environ.get(f"NPSLOOP_STACK_PORT_{spec.name.upper()}", spec.port))

    def pid(self, spec: ServiceSpec) -> int | None:
        return read_pid(self.pidfile(spec.name), spec.app)

    # -- infrastructure -----------------------------------------------------------------------
    def kafka(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(KAFKA_SH), command], capture_output=True, text=True, timeout=600)

    @property
    def external_kafka(self) -> str | None:
        """NPSLOOP_STACK_KAFKA_BOOTSTRAP: a running broker to use; the stack neither starts nor stops it."""
        return os.environ.get("NPSLOOP_STACK_KAFKA_BOOTSTRAP") or None

    def start_kafka(self) -> str:
        if self.external_kafka:
            return self.external_kafka
        run = self.kafka("start")
        if run.returncode != 0:
            raise SystemExit(f"stack: Kafka did not start:\n{run.stderr}")
        return run.stdout.strip().splitlines()[-1]

    def database_url(self) -> str:
        url = os.environ.get("DATABASE_URL") or os.environ.get("NPSLOOP_DATABASE_URL")
        if url:
            return url
        from npsloop_platform.embedded_pg import EmbeddedPostgres

        return EmbeddedPostgres(self.data_dir / "pg", keep_running=True).start()

    def postgres_pid(self) -> int | None:
        if os.environ.get("DATABASE_URL") or os.environ.get("NPSLOOP_DATABASE_URL"):
            return None
        from npsloop_platform.embedded_pg import EmbeddedPostgres

        return EmbeddedPostgres(self.data_dir / "pg").pid()

    # -- up -----------------------------------------------------------------------------------
    def settings(self, tracing: str | None) -> dict[str, str]:
        """What every service gets beyond the bus and database: local mail and call tasks unless an
        SMTP server / call-task URL is configured, JSON logs, tracing as asked."""
        out: dict[str, str] = {"NPSLOOP_LOG_JSON": os.environ.get("NPSLOOP_LOG_JSON", "true")}
        if not os.environ.get("NPSLOOP_SMTP_HOST"):
            out["NPSLOOP_MAIL_DIR"] = str(self.data_dir / "mail")
        if not os.environ.get("NPSLOOP_CALL_TASK_URL"):
            out["NPSLOOP_CALL_TASK_DIR"] = str(self.data_dir / "call-tasks")
        if tracing:
            out["NPSLOOP_TRACING"] = tracing
        return out

    async def up(self, tracing: str | None, timeout: float) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        for spec in missing_services():
            say(f"skipping {spec.name}: its package {spec.package} is not installed (uv sync --package {spec.member})")
        t0 = time.monotonic()
        bootstrap = self.start_kafka()
        say(f"Kafka on {bootstrap}" + ("" if self.external_kafka else f" ({self.kafka('logs').stdout.strip()})"))
        url = self.database_url()
        say("PostgreSQL: " + ("DATABASE_URL" if self.postgres_pid() is None else f"embedded in {self.data_dir / 'pg'}"))
        await self.prepare(bootstrap, url)
        settings = self.settings(tracing)
        started: dict[str, int] = {}
        for spec in installed_services():
            pid, port = self.pid(spec), self.port(spec)
            if pid is not None:
                say(f"{spec.name} already runs (pid {pid}, :{port})")
                continue
            if port_open(port):
                raise SystemExit(
                    f"stack: 127.0.0.1:{port} is taken by another process; set NPSLOOP_STACK_PORT_{spec.name.upper()}"
                )
            env = service_env(
                spec,
                bootstrap=bootstrap,
                database_url=url,
                prefix=os.environ.get("NPSLOOP_TOPIC_PREFIX", ""),
                settings=settings,
                inherit_npsloop=True,
            )
            started[spec.name] = spawn_detached(
                service_argv(spec, port), env, self.log(spec.name), self.pidfile(spec.name)
            )
        if started:
            say("started " + ", ".join(f"{n} (pid {p})" for n, p in started.items()))

        await asyncio.gather(*(self.wait_ready(s, timeout) for s in installed_services()))
        self.write_env(bootstrap, url)
        say(f"ready in {time.monotonic() - t0:.1f}s; see `make status`, `make logs`, `make down`, {self.env_file}")
        await self.status()
        return 0

    async def wait_ready(self, spec: ServiceSpec, timeout: float) -> float:
        def alive() -> bool:
            return self.pid(spec) is not None

        url = f"http://127.0.0.1:{self.port(spec)}/readyz"
        return await wait_ready(spec.name, url, alive, timeout, self.log(spec.name))

    async def prepare(self, bootstrap: str, url: str) -> None:
        """Topics exist before anyone publishes; the development keys (as `make run` makes them)."""
        from npsloop_platform.bus.kafka import KafkaBus
        from npsloop_schemas import ALL_TOPICS

        from ..keys_cli import DEV_KEYS_FILE, ensure_dev_keys

        await KafkaBus(bootstrap, topic_prefix=os.environ.get("NPSLOOP_TOPIC_PREFIX", "")).ensure_topics(ALL_TOPICS)
        if await ensure_dev_keys(url, self.data_dir):
            say(f"development keys for tenant acme written to {self.data_dir / DEV_KEYS_FILE} (mode 0600)")

    def write_env(self, bootstrap: str, url: str) -> None:
        lines = {
            "NPSLOOP_KAFKA_BOOTSTRAP": bootstrap,
            "DATABASE_URL": url,
            **{f"NPSLOOP_{s.name.upper()}_URL": f"http://127.0.0.1:{self.port(s)}" for s in installed_services()},
        }
        self.env_file.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in lines.items()))
        self.env_file.chmod(0o600)

    # -- status -------------------------------------------------------------------------------
    async def status(self) -> int:
        if self.external_kafka:
            bootstrap: str | None = self.external_kafka
        else:
            kafka = self.kafka("status")
            bootstrap = kafka.stdout.split()[-1] if kafka.returncode == 0 else None
        pg_pid = self.postgres_pid()
        rows: list[tuple[str, str, str, str, str]] = [
            ("kafka", str(self.kafka_pid() or "-"), bootstrap or "-", "up" if bootstrap else "down", ""),
            ("postgres", str(pg_pid or "-"), "socket" if pg_pid else "DATABASE_URL", "up" if pg_pid else "?", ""),
        ]
        specs = installed_services()
        lags = (
            await group_lag(bootstrap, [s.group for s in specs if s.group], os.environ.get("NPSLOOP_TOPIC_PREFIX", ""))
            if bootstrap
            else {}
        )
        ok = bool(bootstrap)
        for spec in specs:
            pid, port = self.pid(spec), self.port(spec)
            code, body = await readiness(f"http://127.0.0.1:{port}/readyz") if pid else (None, "")
            state = "ready" if code == 200 else ("stopped" if pid is None else f"not ready ({code or body})")
            if code == 503:
                try:
                    checks = json.loads(body).get("checks", {})
                    state = "not ready: " + ", ".join(k for k, v in checks.items() if not v)
                except ValueError:
                    pass
            ok = ok and code == 200
            lag = lags.get(spec.group) if spec.group else None
            lag_text = "-" if not spec.group else ("n/a" if lag is None else str(lag))
            rows.append((spec.name, str(pid or "-"), str(port), state, lag_text))
        for spec in missing_services():
            rows.append((spec.name, "-", str(self.port(spec)), "not installed", "-"))
        print(f"{'process':<12} {'pid':>8}  {'port':<16} {'readiness':<28} {'lag'}")
        for name, pid_s, port_s, state, lag_text in rows:
            print(f"{name:<12} {pid_s:>8}  {port_s:<16} {state:<28} {lag_text}")
        return 0 if ok else 1

    def kafka_pid(self) -> int | None:
        if self.external_kafka:
            return None
        path = Path(self.kafka("logs").stdout.strip()).parent / "kafka.pid"
        return read_pid(path, "kafka.Kafka")

    # -- logs / down --------------------------------------------------------------------------
    def logs(self, follow: bool) -> int:
        files = [str(self.log(s.name)) for s in SERVICES if self.log(s.name).exists()]
        if not self.external_kafka:
            files.append(self.kafka("logs").stdout.strip())
        argv = ["tail", "-n", "20", *(["-F"] if follow else []), *files]
        try:
            return subprocess.call(argv)
        except KeyboardInterrupt:
            return 0

    def down(self) -> int:
        pids = {s.name: pid for s in SERVICES if (pid := self.pid(s)) is not None}
        if pids:
            say("stopping " + ", ".join(f"{n} (pid {p})" for n, p in pids.items()))
            for name, outcome in stop_pids(pids, timeout=60).items():
                say(f"{name}: {outcome}")
                self.pidfile(name).unlink(missing_ok=True)
        pg = self.postgres_pid()
        if pg is not None:
            import signal

            say(f"stopping PostgreSQL (pid {pg})")
            stop_pids({"postgres": pg}, timeout=30, sig=signal.SIGINT)  # SIGINT: fast shutdown
        if self.external_kafka:
            return 0
        run = self.kafka("stop")
        say("Kafka: " + (run.stderr.strip().splitlines() or ["stopped"])[-1].removeprefix("kafka.sh: "))
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m npsloop.stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default=os.environ.get("NPSLOOP_DATA_DIR", ".npsloop"))
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start what does not run yet and wait until every /readyz answers")
    p_up.add_argument(
        "--tracing",
        choices=("console", "otlp"),
        default=os.environ.get("NPSLOOP_TRACING") or None,
        help="export traces to the service logs (console) or to OTEL_EXPORTER_OTLP_ENDPOINT (otlp)",
    )
    p_up.add_argument("--timeout", type=float, default=120, help="seconds to wait for each /readyz")
    sub.add_parser("status", help="each process, its port, its readiness and its consumer lag")
    p_logs = sub.add_parser("logs", help="follow every log")
    p_logs.add_argument("--no-follow", action="store_true")
    sub.add_parser("down", help="stop everything, by pid")
    args = parser.parse_args(argv)
    stack = Stack(Path(args.data_dir))
    command: Any = args.command
    if command == "up":
        try:
            return asyncio.run(stack.up(args.tracing, args.timeout))
        except RuntimeError as exc:  # a service died or never got ready: say which, and why
            say(f"error: {exc}")
            say("what started is left running: `make status`, `make logs`; `make down` stops it")
            return 1
    if command == "status":
        return asyncio.run(stack.status())
    if command == "logs":
        return stack.logs(not args.no_follow)
    return stack.down()


if __name__ == "__main__":
    sys.exit(main())
