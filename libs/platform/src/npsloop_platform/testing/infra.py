"""Starting and stopping the real Kafka broker and PostgreSQL for tests and benchmarks."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from sqlalchemy import make_url


def kafka_script() -> Path:
    """deploy/local/kafka.sh of this checkout (NPSLOOP_KAFKA_SCRIPT overrides)."""
    if os.environ.get("NPSLOOP_KAFKA_SCRIPT"):
        return Path(os.environ["NPSLOOP_KAFKA_SCRIPT"])
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for folder in (start, *start.parents):
            candidate = folder / "deploy" / "local" / "kafka.sh"
            if candidate.is_file():
                return candidate
    raise RuntimeError("deploy/local/kafka.sh not found: run from the npsloop checkout or set NPSLOOP_KAFKA_SCRIPT")


@contextmanager
def kafka_broker(data_dir: Path, port: int) -> Iterator[str]:
    """Start a broker of our own (own data dir and port) and stop it afterwards.

    NPSLOOP_TEST_KAFKA_BOOTSTRAP=host:port uses an existing broker instead (it is not stopped).
    """
    existing = os.environ.get("NPSLOOP_TEST_KAFKA_BOOTSTRAP")
    if existing:
        yield existing
        return
    env = {**os.environ, "NPSLOOP_KAFKA_DATA": str(data_dir), "NPSLOOP_KAFKA_PORT": str(port)}
    script = str(kafka_script())
    result = subprocess.run(["bash", script, "start"], env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"Kafka did not start:\n{result.stdout}\n{result.stderr}")
    try:
        yield result.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", script, "stop"], env=env, capture_output=True, timeout=120)


@contextmanager
def postgres_server(data_dir: Path) -> Iterator[str]:
    """DATABASE_URL if set, else an embedded PostgreSQL in `data_dir`, stopped afterwards."""
    existing = os.environ.get("DATABASE_URL") or os.environ.get("NPSLOOP_DATABASE_URL")
    if existing:
        yield existing
        return
    from ..embedded_pg import EmbeddedPostgres

    pg = EmbeddedPostgres(data_dir)
    url = pg.start()
    try:
        yield url
    finally:
        pg.stop()


@asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    """A new, empty database on the server for one test; dropped afterwards."""
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:16]}"
    base = make_url(server_url)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(
            user=base.username,
            password=base.password or None,
            database=base.database or "postgres",
            host=base.query.get("host") or base.host,
            port=base.port,
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
