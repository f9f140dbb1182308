"""`npsloop digest preview` and `npsloop reporting rebuild` as a person runs them, against real
PostgreSQL (and real Kafka for the rebuild), with the bad inputs they must refuse precisely."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from npsloop.demo import STORES_TOML
from npsloop_platform.bus.kafka import KafkaBus
from npsloop_platform.db import Database, migrate
from npsloop_platform.stores import load_stores
from npsloop_platform.testing.plugin import unique_prefix
from npsloop_reporting.consumer import MIGRATIONS
from npsloop_reporting.models import SCHEMA
from npsloop_reporting.samples import classified, fold_into, opened, updated
from npsloop_schemas import serialize_event, topic_for

AT = datetime(2026, 11, 18, 10, tzinfo=UTC)  # 2026-W47


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "npsloop.cli", *args],
        env={**os.environ, "NPSLOOP_LOG_LEVEL": "WARNING", **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


async def test_digest_preview_writes_the_html_and_refuses_bad_input(database_url: str, tmp_path: Path) -> None:
    stores_file = tmp_path / "stores.toml"
    stores_file.write_text(STORES_TOML)
    await migrate(database_url, MIGRATIONS, SCHEMA)
    db = Database(database_url, pool_size=1)
    try:
        await fold_into(
            db,
            load_stores(stores_file),
            [
                classified(AT, 10, store="berlin-1", comment="<img src=x onerror=alert(1)> Lovely staff"),
                classified(AT, 3, store="berlin-1", comment="slow"),
            ],
        )
    finally:
        await db.stop()
    env = {"DATABASE_URL": database_url, "NPSLOOP_STORES_FILE": str(stores_file)}
    out = tmp_path / "digest.html"
    ok = cli(
        "digest", "preview", "--tenant", "acme", "--store", "berlin-1", "--week", "2026-W47", "--out", str(out), **env
    )
    assert ok.returncode == 0, ok.stderr
    assert "2 answers" in ok.stdout
    page = out.read_text()
    assert "Berlin Mitte: your week 2026-W47" in page and "NPS <b>+0 (too few answers" in page
    assert "&lt;img src=x" in page and "<img" not in page
    region = cli(
        "digest",
        "preview",
        "--tenant",
        "acme",
        "--region",
        "north",
        "--week",
        "2026-W47",
        "--out",
        str(tmp_path / "north.html"),
        **env,
    )
    assert region.returncode == 0 and "Region North" in (tmp_path / "north.html").read_text()

    bad_week = cli(
        "digest",
        "preview",
        "--tenant",
        "acme",
        "--store",
        "berlin-1",
        "--week",
        "2026-W54",
        "--out",
        str(tmp_path / "x.html"),
        **env,
    )
    assert bad_week.returncode == 2 and "2026 has 53 ISO weeks" in bad_week.stderr
    unknown = cli(
        "digest",
        "preview",
        "--tenant",
        "acme",
        "--store",
        "nowhere-9",
        "--week",
        "2026-W47",
        "--out",
        str(tmp_path / "x.html"),
        **env,
    )
    assert unknown.returncode == 2 and "unknown store 'nowhere-9'" in unknown.stderr
    bad_tz = tmp_path / "bad.toml"
    bad_tz.write_text('[stores."acme/berlin-1"]\ntime_zone = "Europe/Berlim"\n')
    zone = cli(
        "digest",
        "preview",
        "--tenant",
        "acme",
        "--store",
        "berlin-1",
        "--week",
        "2026-W47",
        "--out",
        str(tmp_path / "x.html"),
        **{**env, "NPSLOOP_STORES_FILE": str(bad_tz)},
    )
    assert zone.returncode == 2 and "unknown time zone 'Europe/Berlim'" in zone.stderr
    assert not (tmp_path / "x.html").exists() and "Traceback" not in zone.stderr + unknown.stderr + bad_week.stderr


def test_rebuild_needs_kafka(database_url: str) -> None:
    r = cli("reporting", "rebuild", DATABASE_URL=database_url, NPSLOOP_BUS="memory")
    assert r.returncode == 2 and "rebuild needs Kafka" in r.stderr


@pytest.mark.kafka
@pytest.mark.slow
async def test_rebuild_replays_kafka_into_dropped_tables(database_url: str, kafka_bootstrap: str) -> None:
    prefix = unique_prefix()
    bus = KafkaBus(kafka_bootstrap, topic_prefix=prefix)
    await bus.start()
    await bus.wait_connected(60)
    d = classified(AT, 2, customer="d")
    case = opened(d, AT, sla_due_at=AT + timedelta(hours=24))
    events = [
        classified(AT, 10),
        classified(AT, 8),
        d,
        case,
        updated(case, AT + timedelta(hours=2), "contacted", "contacted"),
    ]
    try:
        for e in events:
            await bus.publish(topic_for(e), serialize_event(e), key=b"acme:k")
    finally:
        await bus.stop()
    env = {
        "DATABASE_URL": database_url,
        "NPSLOOP_BUS": "kafka",
        "NPSLOOP_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "NPSLOOP_TOPIC_PREFIX": prefix,
    }
    for _ in range(2):  # a second rebuild empties and replays again: the same tables
        r = cli("reporting", "rebuild", **env)
        assert r.returncode == 0, r.stderr
        assert "5 folded" in r.stdout and "5/5 messages (100%)" in r.stderr
        db = Database(database_url, pool_size=1)
        try:
            async with db.session() as s:
                row = (
                    await s.execute(
                        text(
                            "SELECT (SELECT count(*) FROM reporting.responses), (SELECT count(*) FROM reporting.cases), "
                            "(SELECT count(first_contact_at) FROM reporting.cases)"
                        )
                    )
                ).one()
        finally:
            await db.stop()
        assert tuple(row) == (3, 1, 1)
