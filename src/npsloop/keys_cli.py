"""`npsloop keys create|list|revoke`: key management from a shell.

Works against DATABASE_URL, or against the embedded default's PostgreSQL in NPSLOOP_DATA_DIR
(default .npsloop), running or not: a running server is reused, a stopped one is started for the
command and stopped again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The access store is imported by the commands that use it, so that `npsloop --help` and every
# other command do not pay for it.
if TYPE_CHECKING:
    from npsloop_platform.access import KeyStore

ROLES = ("source", "manager", "admin")  # npsloop_platform.access.Role's values (a test holds them equal)
DEV_TENANT = "acme"
DEV_KEYS_FILE = "dev-keys.env"
CLI_ACTOR = f"cli:{os.environ.get('USER') or os.environ.get('LOGNAME') or 'unknown'}"


@contextmanager
def database_url(data_dir: str) -> Iterator[str]:
    url = os.environ.get("DATABASE_URL") or os.environ.get("NPSLOOP_DATABASE_URL")
    if url:
        yield url
        return
    from npsloop_platform.embedded_pg import EmbeddedPostgres

    pg = EmbeddedPostgres(Path(data_dir).resolve() / "pg")
    try:
        yield pg.start()
    finally:
        pg.stop()  # stops the server only if this command started it


async def _with_store(url: str, action: Any) -> Any:
    from npsloop_platform.access import MIGRATIONS, SCHEMA, KeyStore
    from npsloop_platform.db import Database, migrate

    await migrate(url, MIGRATIONS, SCHEMA)
    db = Database(url, pool_size=1)
    try:
        return await action(KeyStore(db))
    finally:
        await db.stop()


def keys_command(args: argparse.Namespace) -> int:
    from npsloop_platform.access import Role

    with database_url(args.data_dir) as url:
        if args.keys_command == "create":
            key, described = asyncio.run(
                _with_store(
                    url, lambda s: s.create(args.tenant, Role(args.role), args.store or None, CLI_ACTOR, args.name)
                )
            )
            print(
                f"{key}\n\nThis is the only time the key is shown. Prefix {described['prefix']}: "
                f"tenant {described['tenant_id']}, role {described['role']}, "
                f"stores {', '.join(described['stores']) if described['stores'] else 'all'}."
            )
        elif args.keys_command == "list":
            rows = asyncio.run(_with_store(url, lambda s: s.list_keys(args.tenant)))
            if args.json:
                print(json.dumps(rows, indent=2))
            else:
                print(f"{'prefix':<10} {'tenant':<16} {'role':<8} {'stores':<24} {'created':<20} revoked")
                for r in rows:
                    stores = ",".join(r["stores"]) if r["stores"] else "all"
                    print(
                        f"{r['prefix']:<10} {r['tenant_id']:<16} {r['role']:<8} {stores:<24} "
                        f"{r['created_at'][:19]:<20} {(r['revoked_at'] or '-')[:19]}"
                    )
        elif args.keys_command == "revoke":
            if not asyncio.run(_with_store(url, lambda s: s.revoke(args.prefix, CLI_ACTOR))):
                print(f"no live key with prefix {args.prefix!r}")
                return 1
            print(f"revoked {args.prefix}: every service refuses it within a few seconds")
    return 0


def add_keys_parser(sub: Any) -> None:
    p = sub.add_parser("keys", help="create, list and revoke API keys")
    p.add_argument(
        "--data-dir",
        default=os.environ.get("NPSLOOP_DATA_DIR", ".npsloop"),
        help="the embedded default's data dir (when DATABASE_URL is not set)",
    )
    ks = p.add_subparsers(dest="keys_command", required=True)
    c = ks.add_parser("create", help="create a key; it is printed once")
    c.add_argument("--tenant", required=True)
    c.add_argument("--role", required=True, choices=ROLES)
    c.add_argument("--store", action="append", help="limit the key to this store (repeatable)")
    c.add_argument("--name", help="what the key is for")
    ls = ks.add_parser("list", help="list keys (prefixes, never secrets)")
    ls.add_argument("--tenant")
    ls.add_argument("--json", action="store_true")
    r = ks.add_parser("revoke", help="revoke a key by its prefix")
    r.add_argument("prefix")
    p.set_defaults(func=keys_command)


async def ensure_dev_keys(url: str, data_dir: Path) -> str | None:
    """On the first run of the embedded default: tenant `acme` with one key of each role, written
    to <data dir>/dev-keys.env (mode 0600). Returns what to print once, or None on later runs."""
    from npsloop_platform.access import Role

    path = data_dir / DEV_KEYS_FILE
    if path.exists():
        return None

    async def create(store: KeyStore) -> dict[str, str]:
        keys = {}
        for role in (Role.SOURCE, Role.MANAGER, Role.ADMIN):
            key, _ = await store.create(DEV_TENANT, role, None, "npsloop run", f"development {role} key")
            keys[f"NPSLOOP_{role.upper()}_KEY"] = key
        return keys

    keys: dict[str, str] = await _with_store(url, create)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as f:
        f.write("# Development keys of tenant acme, made by the first `make run`. Never use them in production.\n")
        f.writelines(f"{name}={key}\n" for name, key in keys.items())
    return "\n".join(f"  {name}={key}" for name, key in keys.items())
