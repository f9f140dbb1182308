"""Found by `make chaos`: while Postgres restarted, ingest answered 500 (the API key lookup and the
idempotency claim hit a closed connection, then a missing Unix socket), and a client that retries
only 503s lost those answers. An outage in a request is now a 503 with Retry-After."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from npsloop_platform.http_edge import install_error_handlers
from npsloop_platform.retry import is_transient


def shutting_down() -> DBAPIError:
    """What SQLAlchemy raises while Postgres shuts down: a bare DBAPIError whose `orig` is the
    adapted driver error, caused by asyncpg's CannotConnectNowError."""
    import asyncpg

    driver = Exception("the database system is shutting down")
    driver.__cause__ = asyncpg.CannotConnectNowError("the database system is shutting down")
    return DBAPIError("UPDATE ingest.accepted", {}, driver)


def test_a_bare_dbapi_error_around_an_outage_is_transient_and_around_a_bug_is_not() -> None:
    assert is_transient(shutting_down())
    assert not is_transient(DBAPIError("SELECT 1", {}, Exception("syntax error at or near")))


def busy_connection() -> Exception:
    import asyncpg

    return asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress")


def app_raising(exc: BaseException) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    return app


async def get(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/boom")


@pytest.mark.parametrize(
    "exc",
    [
        InterfaceError("SELECT 1", {}, Exception("the underlying connection is closed")),
        OperationalError("SELECT 1", {}, Exception("server closed the connection")),
        FileNotFoundError(2, "No such file or directory"),  # the socket of a restarting Postgres
        ConnectionRefusedError(111, "Connection refused"),
        shutting_down(),  # the second run: a bare DBAPIError around asyncpg's CannotConnectNowError
        busy_connection(),  # a pooled connection handed out mid-statement while Postgres restarted
    ],
)
def test_an_outage_during_a_request_is_a_503_with_retry_after(exc: BaseException) -> None:
    r = asyncio.run(get(app_raising(exc)))
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert "retry" in r.json()["detail"]


def test_a_bug_is_still_a_500() -> None:
    import asyncpg

    assert asyncio.run(get(app_raising(ValueError("bug")))).status_code == 500
    assert asyncio.run(get(app_raising(asyncpg.InternalClientError("unexpected message")))).status_code == 500
    assert asyncio.run(get(app_raising(FileNotFoundError(2, "No such file", "policy.yaml")))).status_code == 500


def test_a_missing_socket_is_transient_and_a_missing_file_is_not() -> None:
    assert is_transient(FileNotFoundError(2, "No such file or directory"))
    assert not is_transient(FileNotFoundError(2, "No such file or directory", "/etc/npsloop/policy.yaml"))
