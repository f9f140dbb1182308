"""Async SQLAlchemy engine as a component, URL normalisation, and Alembic migrations per schema."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def to_async_url(url: str) -> str:
    """Accept postgresql://, postgres:// or postgresql+asyncpg:// and return the asyncpg form."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL (expected postgresql://...): {url.split('@')[-1]!r}")


def _set_on_connect(engine: AsyncEngine, settings: dict[str, str]) -> None:
    """`SET name = value` on every new connection, once. Plain SET statements, not startup
    parameters, so that a pooler (PgBouncer refuses unknown startup parameters) passes them."""
    for name in settings:
        if not re.fullmatch(r"[a-z_][a-z0-9_.]*", name):
            raise ValueError(f"not a PostgreSQL setting name: {name!r}")
    statements = [f"SET {name} = '{value.replace(chr(39), chr(39) * 2)}'" for name, value in settings.items()]

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Through the adapter's cursor, so that a failure (the server going away meanwhile) comes
        # out as SQLAlchemy's connect errors do, which the outage handling knows; in autocommit,
        # so that the SETs are not inside a transaction that the pool later rolls back.
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        try:
            cursor = dbapi_connection.cursor()
            try:
                for sql in statements:
                    cursor.execute(sql)
            finally:
                cursor.close()
        finally:
            dbapi_connection.autocommit = autocommit


# For a pool whose statements take their ids as arrays: a generic plan counts an array as 10 rows,
# and one made while a table was small (a sequential scan) stays as the table grows, until the next
# ANALYZE. Ingest's and notifier's pools set it; actions' `mark_cases` and reporting's reads, on a
# pool they share in the embedded default, ask for it per transaction (`custom_plans`). Numbers:
# `python -m bench.plan_check`, bench/README.md.
CUSTOM_PLANS: Mapping[str, str] = {"plan_cache_mode": "force_custom_plan"}
_SET_LOCAL_CUSTOM_PLANS = text("; ".join(f"SET LOCAL {name} = {value}" for name, value in CUSTOM_PLANS.items()))


async def custom_plans(session: AsyncSession) -> None:
    """`CUSTOM_PLANS` for the rest of this session's transaction only: for a pool shared with
    statements that are better off with their cached plans (the embedded default's)."""
    await session.execute(_SET_LOCAL_CUSTOM_PLANS)


@asynccontextmanager
async def custom_plan_session(db: Database) -> AsyncIterator[AsyncSession]:
    """A session whose transaction plans each statement for its parameters (`custom_plans`)."""
    async with db.session() as session:
        await custom_plans(session)
        yield session


class Database:
    """A component owning the engine. The unit of work commits once, at the edge."""

    name = "postgres"

    def __init__(
        self, url: str, *, pool_size: int = 10, echo: bool = False, session_settings: Mapping[str, str] | None = None
    ) -> None:
        self.url = to_async_url(url)
        # No pre-ping: it costs a round trip per checkout. A connection that died with the server
        # fails its statement instead, is invalidated, and the edge retries that as an outage.
        self.engine: AsyncEngine = create_async_engine(self.url, pool_size=pool_size, max_overflow=pool_size, echo=echo)
        if session_settings:
            _set_on_connect(self.engine, dict(session_settings))
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.engine.dispose()

    async def ready(self) -> bool:
        try:
            async with asyncio.timeout(3), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def session(self) -> AsyncSession:
        return self.sessions()


class Statement:
    """SQL with `:name` parameters, run on an asyncpg connection (`driver_connection`) as `$n` ones.

    A `:name` right after a word character or another colon (`x::int`, `'00:00'`) is not a
    parameter; keep `:word` out of string literals.
    """

    _PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")

    def __init__(self, sql: str) -> None:
        self.names: list[str] = []

        def number(m: re.Match[str]) -> str:
            if m.group(1) not in self.names:
                self.names.append(m.group(1))
            return f"${self.names.index(m.group(1)) + 1}"

        self.sql = self._PARAM.sub(number, sql)

    async def fetch(self, conn: Any, params: dict[str, Any]) -> list[Any]:
        """The rows (asyncpg Records: `row["name"]`)."""
        return list(await conn.fetch(self.sql, *(params[n] for n in self.names)))


async def _pooled_open(engine: AsyncEngine) -> Any:
    """A pooled connection whose asyncpg connection is open. One the server closed meanwhile (a
    PostgreSQL restart) is dropped, not handed out: SQLAlchemy's own execution would notice and
    reconnect; here nobody would. A failed connect raises the driver's error (asyncpg's or an
    OSError, which `retry.is_transient` and the HTTP edge classify), not the adapter's wrapper."""
    for _ in range(getattr(engine.pool, "size", lambda: 8)() + 2):
        try:
            raw = await engine.raw_connection()
        except Exception as exc:
            cause = exc.__cause__
            if isinstance(cause, Exception) and type(exc).__module__.startswith("sqlalchemy"):
                raise cause from exc
            raise
        driver: Any = raw.driver_connection
        if driver is not None and not driver.is_closed():
            return raw
        raw.invalidate()
        raw.close()
    raise ConnectionError("every pooled database connection was closed by the server; retry")


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """The asyncpg connection under one of the engine's pooled connections, for the few hot-path
    statements where SQLAlchemy's execution path cost more CPU than the statement (a few hundred
    microseconds per call, against tens for asyncpg). Outside a transaction: each statement
    commits by itself. Statements take `$1`-style parameters.

    A connection whose statement raised is dropped from the pool rather than returned: SQLAlchemy
    is not there to tell a dead connection from a failed statement, and a reconnect is cheap next
    to an error. The errors are asyncpg's (and OSError), which `retry.is_transient` classifies.
    """
    raw = await _pooled_open(engine)
    try:
        yield raw.driver_connection
    except BaseException:
        raw.invalidate()
        raise
    finally:
        raw.close()


def _upgrade(url: str, migrations_dir: Path, schema: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["url"] = to_async_url(url)
    cfg.attributes["schema"] = schema
    command.upgrade(cfg, "head")


async def migrate(url: str, migrations_dir: Path, schema: str) -> None:
    """Run `alembic upgrade head` for one service's schema (Alembic's env runs its own loop)."""
    await asyncio.to_thread(_upgrade, url, migrations_dir, schema)


class Migrations:
    """A component that upgrades the schema on start, so that a fresh database just works."""

    def __init__(self, url: str, migrations_dir: Path, schema: str) -> None:
        self.name = f"migrations:{schema}"
        self.url, self.migrations_dir, self.schema = url, migrations_dir, schema
        self.done = False

    async def start(self) -> None:
        await migrate(self.url, self.migrations_dir, self.schema)
        self.done = True

    async def stop(self) -> None:
        return None

    async def ready(self) -> bool:
        return self.done
