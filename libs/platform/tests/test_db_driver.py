"""The hot-path SQL helpers: `:name` statements on the asyncpg connection under a pooled one."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from npsloop_platform.db import Database, Statement, driver_connection
from npsloop_platform.testing.helpers import eventually


def test_statement_numbers_each_name_once_and_leaves_casts_and_times_alone() -> None:
    s = Statement(
        "SELECT x::int, CAST(:ids AS uuid[]), :now, :now, TIMESTAMPTZ '1970-01-01 00:00Z' FROM t WHERE a = :a_1"
    )
    assert s.sql == "SELECT x::int, CAST($1 AS uuid[]), $2, $2, TIMESTAMPTZ '1970-01-01 00:00Z' FROM t WHERE a = $3"
    assert s.names == ["ids", "now", "a_1"]


async def test_driver_connection_runs_statements_and_drops_a_connection_that_failed(database_url: str) -> None:
    db = Database(database_url, pool_size=1)
    try:
        ids = [uuid.uuid4(), uuid.uuid4()]
        select = Statement("SELECT id, n FROM unnest(CAST(:ids AS uuid[]), CAST(:ns AS int[])) AS t(id, n)")
        async with driver_connection(db.engine) as conn:
            rows = await select.fetch(conn, {"ids": ids, "ns": [1, 2]})
            pid = await conn.fetchval("SELECT pg_backend_pid()")
        assert [(r["id"], r["n"]) for r in rows] == [(ids[0], 1), (ids[1], 2)]
        async with driver_connection(db.engine) as conn:  # returned to the pool, and reused
            assert await conn.fetchval("SELECT pg_backend_pid()") == pid

        with pytest.raises(asyncpg.UndefinedTableError):
            async with driver_connection(db.engine) as conn:
                await conn.fetch("SELECT * FROM no_such_table")
        async with driver_connection(db.engine) as conn:  # the failed one was not put back
            assert await conn.fetchval("SELECT pg_backend_pid()") != pid
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await db.stop()


async def test_a_pooled_connection_the_server_closed_is_not_handed_out(database_url: str) -> None:
    """After a PostgreSQL restart the pool still holds connections the server closed; SQLAlchemy's
    own execution would reconnect, a raw asyncpg statement on one raised 'connection is closed' (a
    500 in ingest during the chaos run). driver_connection drops it and hands out an open one."""
    db = Database(database_url, pool_size=1)
    try:
        async with driver_connection(db.engine) as conn:
            old = await conn.fetchval("SELECT pg_backend_pid()")
        stale = conn  # back in the pool
        other = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            assert await other.fetchval("SELECT pg_terminate_backend($1)", old)
        finally:
            await other.close()
        await eventually(_closed(stale), timeout=10, what="the pooled connection to see the server close it")
        async with driver_connection(db.engine) as conn:  # no error: a fresh connection
            assert conn is not stale and await conn.fetchval("SELECT pg_backend_pid()") != old
    finally:
        await db.stop()


def _closed(conn: asyncpg.Connection) -> Any:
    async def check() -> bool:
        return bool(conn.is_closed())

    return check


async def test_session_settings_hold_on_every_connection_through_rollbacks(database_url: str) -> None:
    """Ingest asks for custom plans; the setting must survive the pool's rollback on return and
    apply to a connection opened later (after one was dropped), on both execution paths."""
    from sqlalchemy import text

    db = Database(database_url, pool_size=1, session_settings={"plan_cache_mode": "force_custom_plan"})
    try:
        async with db.engine.connect() as conn:  # SQLAlchemy's path, in a transaction it rolls back
            assert (await conn.execute(text("SHOW plan_cache_mode"))).scalar() == "force_custom_plan"
            await conn.rollback()
        async with driver_connection(db.engine) as raw:
            assert await raw.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
            pid = await raw.fetchval("SELECT pg_backend_pid()")
        with pytest.raises(asyncpg.UndefinedTableError):  # drops that connection
            async with driver_connection(db.engine) as raw:
                await raw.fetch("SELECT * FROM no_such_table")
        async with driver_connection(db.engine) as raw:
            assert await raw.fetchval("SELECT pg_backend_pid()") != pid
            assert await raw.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
    finally:
        await db.stop()
    plain = Database(database_url, pool_size=1)  # nobody else gets it
    try:
        async with driver_connection(plain.engine) as raw:
            assert await raw.fetchval("SHOW plan_cache_mode") == "auto"
    finally:
        await plain.stop()


def test_a_session_setting_name_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="not a PostgreSQL setting name"):
        Database("postgresql://u@127.0.0.1/db", session_settings={"plan_cache_mode; DROP TABLE x": "on"})
