"""`npsloop digest preview` and `npsloop reporting rebuild`.

Both work against DATABASE_URL, or against the embedded default's PostgreSQL in NPSLOOP_DATA_DIR
(default .npsloop), running or not, like `npsloop keys`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


def _fail(message: str) -> int:
    print(f"npsloop: {message}", file=sys.stderr)
    return EXIT_USAGE


def preview_command(args: argparse.Namespace) -> int:
    from npsloop_platform.stores import StoreConfigError, load_stores
    from npsloop_reporting.periods import Period, PeriodError, PeriodKind, parse_week

    from .keys_cli import database_url

    try:
        week = Period.containing(PeriodKind.WEEK, parse_week(args.week))
    except PeriodError as exc:
        return _fail(f"--week: {exc}")
    try:
        stores = load_stores(args.stores_file)
    except StoreConfigError as exc:
        return _fail(str(exc))
    if not args.store and not args.region:
        return _fail("name a store (--store S) or a region (--region R)")
    with database_url(args.data_dir) as url:
        result = asyncio.run(_preview(url, stores, args.tenant, args.store, args.region, week))
    if isinstance(result, str):
        return _fail(result)
    n, page = result
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out}: {args.store or 'region ' + args.region}, week {week.label}, {n} answers")
    return 0


async def _preview(
    url: str, stores: Any, tenant: str, store: str | None, region: str | None, week: Any
) -> tuple[int, str] | str:
    from datetime import UTC, datetime

    from npsloop_platform.db import Database, migrate
    from npsloop_reporting.consumer import MIGRATIONS
    from npsloop_reporting.digest import build_digest, render_html
    from npsloop_reporting.figures import Scope, known_region, known_store
    from npsloop_reporting.models import SCHEMA

    await migrate(url, MIGRATIONS, SCHEMA)
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            if store is not None:
                listed = f"{tenant}/{store}" in stores.stores
                if not listed and not await known_store(session, tenant, store):
                    return f"unknown store {store!r} of tenant {tenant!r}: not in the store directory, never reported"
                entry = stores.store(tenant, store)
                title = entry.name or store
            else:
                assert region is not None
                if stores.region(region) is None and not await known_region(session, tenant, region):
                    return f"unknown region {region!r}: not in the store directory, never reported"
                r = stores.region(region)
                title = f"Region {(r.name if r else None) or region}"
            digest = await build_digest(
                session, Scope(tenant, store_id=store, region=region), title, week, datetime.now(UTC)
            )
    finally:
        await db.stop()
    return digest.current.n, render_html(digest)


def rebuild_command(args: argparse.Namespace) -> int:
    from npsloop_platform.stores import StoreConfigError, load_stores
    from npsloop_reporting.config import ReportingSettings

    from .keys_cli import database_url

    with database_url(args.data_dir) as url:
        try:
            settings = ReportingSettings(database_url=url)
            stores = load_stores(settings.stores_file)
        except (StoreConfigError, ValueError) as exc:
            return _fail(str(exc))
        if settings.bus != "kafka":
            return _fail("the in-memory bus keeps no history to replay: rebuild needs Kafka (NPSLOOP_BUS=kafka)")
        stats = asyncio.run(_rebuild(url, settings, stores))
    print(
        f"\nrebuilt the reporting read model: {stats.read} messages read, {stats.folded} folded, "
        f"{stats.skipped} skipped (poison or not for reporting), in {stats.seconds:.1f}s"
    )
    return 0


async def _rebuild(url: str, settings: Any, stores: Any) -> Any:
    from npsloop_platform.bus import make_bus
    from npsloop_platform.db import Database
    from npsloop_reporting.rebuild import RebuildStats, rebuild

    tty = sys.stderr.isatty()
    last = [0.0]

    def progress(s: RebuildStats) -> None:
        share = s.read / s.total if s.total else 1.0
        rate = s.read / s.seconds if s.seconds else 0.0
        if tty:
            bar = "#" * int(min(share, 1.0) * 30)
            sys.stderr.write(f"\r[{bar:<30}] {s.read}/{s.total} {rate:,.0f} msg/s ")
            sys.stderr.flush()
        elif time.monotonic() - last[0] > 2 or s.read >= s.total:
            last[0] = time.monotonic()
            sys.stderr.write(f"{s.read}/{s.total} messages ({share:.0%}), {rate:,.0f} msg/s\n")

    bus = make_bus(settings)
    await bus.start()
    db = Database(url, pool_size=2)
    try:
        if hasattr(bus, "wait_connected"):
            await bus.wait_connected(60)
        return await rebuild(
            bus, url, db, stores, settings.default_sla_hours * 3600, settings.group_id, progress=progress
        )
    finally:
        await db.stop()
        await bus.stop()


def add_reporting_parsers(sub: Any) -> None:
    data_dir = {
        "default": os.environ.get("NPSLOOP_DATA_DIR", ".npsloop"),
        "help": "the embedded default's data dir (when DATABASE_URL is not set)",
    }
    d = sub.add_parser("digest", help="the weekly store digest")
    ds = d.add_subparsers(dest="digest_command", required=True)
    p = ds.add_parser("preview", help="write a store's (or region's) weekly digest as HTML, without sending it")
    p.add_argument("--tenant", required=True)
    p.add_argument("--store", help="the store id")
    p.add_argument("--region", help="a region of the store directory (the roll-up), instead of --store")
    p.add_argument("--week", required=True, help="ISO week, e.g. 2026-W47")
    p.add_argument("--out", required=True, help="the HTML file to write")
    p.add_argument("--data-dir", **data_dir)
    p.add_argument("--stores-file", default=os.environ.get("NPSLOOP_STORES_FILE"), help="NPSLOOP_STORES_FILE")
    p.set_defaults(func=preview_command)
    r = sub.add_parser("reporting", help="the reporting read model")
    rs = r.add_subparsers(dest="reporting_command", required=True)
    rb = rs.add_parser("rebuild", help="empty the read model and replay it from the earliest Kafka offsets")
    rb.add_argument("--data-dir", **data_dir)
    rb.set_defaults(func=rebuild_command)
