"""The hot-path SQL helpers: `:name` statements on the asyncpg connection under a pooled one."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from npsloop_platform.db import Database, Statement, driver_connection


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
