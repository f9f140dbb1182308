"""`npsloop webhooks create|list|delete|rotate|enable|deliveries|replay`: CRM webhook
subscriptions from a shell, against DATABASE_URL or the embedded default's PostgreSQL (like
`npsloop keys`). The secret is printed once, at create and rotate.

Mode: NPSLOOP_MODE, else dev for the embedded default's data dir and prod with DATABASE_URL; prod
refuses non-HTTPS URLs and URLs resolving to private addresses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .keys_cli import CLI_ACTOR, database_url

# The notifier's modules are imported by the commands that use them, so that `npsloop --help` and
# every other command do not pay for them.
if TYPE_CHECKING:
    from npsloop_notifier.config import NotifierSettings
    from npsloop_notifier.webhook_repository import SqlWebhookStore
    from npsloop_platform.db import Database


def _mode() -> str:
    explicit = os.environ.get("NPSLOOP_MODE")
    if explicit in ("dev", "prod"):
        return explicit
    return "prod" if (os.environ.get("DATABASE_URL") or os.environ.get("NPSLOOP_DATABASE_URL")) else "dev"


async def _with(url: str, action: Callable[[SqlWebhookStore, Database, NotifierSettings], Awaitable[Any]]) -> Any:
    from npsloop_notifier.config import NotifierSettings
    from npsloop_notifier.main import MIGRATIONS
    from npsloop_notifier.models import SCHEMA
    from npsloop_notifier.webhook_repository import SqlWebhookStore
    from npsloop_platform.db import Database, migrate

    await migrate(url, MIGRATIONS, SCHEMA)
    settings = NotifierSettings(database_url=url, mode=_mode())
    db = Database(url, pool_size=2)
    try:
        return await action(SqlWebhookStore(db, disable_after=settings.webhook_disable_after), db, settings)
    finally:
        await db.stop()


def _print(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    print("  ".join(f"{c:<20}" for c in columns))
    for r in rows:
        print("  ".join(f"{str(r.get(c) if r.get(c) is not None else '-')[:36]:<20}" for c in columns))


async def _replay(args: argparse.Namespace, store: SqlWebhookStore, settings: NotifierSettings) -> list[Any]:
    from npsloop_notifier.channels import HttpClient
    from npsloop_notifier.webhook_handlers import WebhookDispatcher
    from npsloop_notifier.webhooks import WebhookSender, public_only_resolver

    if args.delivery:
        claimed = await store.claim_replay(args.tenant, delivery_id=uuid.UUID(args.delivery))
    else:
        since = datetime.fromisoformat(args.since) if args.since else datetime.now(UTC) - timedelta(days=1)
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        claimed = await store.claim_replay(args.tenant, sub_id=uuid.UUID(args.subscription), since=since)
    http = HttpClient(settings.webhook_timeout_s, resolver=public_only_resolver if settings.mode == "prod" else None)
    try:
        return await WebhookDispatcher(store, WebhookSender(http), settings).replay(claimed)
    finally:
        await http.stop()


def webhooks_command(args: argparse.Namespace) -> int:
    from npsloop_notifier.admin_repository import DeliveryLog
    from npsloop_notifier.webhooks import UrlRefused, check_url

    command = args.webhooks_command
    with database_url(args.data_dir) as url:

        async def run(store: SqlWebhookStore, db: Database, settings: NotifierSettings) -> int:
            if command == "create":
                try:
                    checked = await check_url(args.url, settings.mode)
                except UrlRefused as exc:
                    print(f"url refused ({settings.mode} mode): {exc}")
                    return 2
                secret, sub = await store.create(args.tenant, checked, sorted(set(args.event_type)), args.description,
                                                 CLI_ACTOR)  # fmt: skip
                print(f"{secret}\n\nThis is the only time the secret is shown. Subscription {sub['id']}: "
                      f"{sub['url']} <- {', '.join(sub['event_types'])}")  # fmt: skip
            elif command == "list":
                rows = await store.list_subscriptions(args.tenant)
                _print(rows, args.json, ["id", "url", "event_types", "status", "consecutive_failures"])
            elif command == "delete":
                if not await store.delete(args.tenant, uuid.UUID(args.id)):
                    print(f"no subscription {args.id} in tenant {args.tenant}")
                    return 1
                print(f"deleted {args.id}")
            elif command == "rotate":
                overlap = timedelta(
                    seconds=args.overlap_s if args.overlap_s is not None else settings.webhook_rotation_overlap_s
                )
                rotated = await store.rotate(args.tenant, uuid.UUID(args.id), overlap, datetime.now(UTC))
                if rotated is None:
                    print(f"no subscription {args.id} in tenant {args.tenant}")
                    return 1
                print(f"{rotated}\n\nThe new secret, shown once. The old one keeps signing too for {overlap}.")
            elif command == "enable":
                if not await store.enable(args.tenant, uuid.UUID(args.id)):
                    print(f"no subscription {args.id} in tenant {args.tenant}")
                    return 1
                print(f"enabled {args.id}")
            elif command == "deliveries":
                rows = await DeliveryLog(db).deliveries(
                    args.tenant, kind="webhook", status=args.status,
                    subscription_id=uuid.UUID(args.subscription) if args.subscription else None, limit=args.limit,
                )  # fmt: skip
                _print(rows, args.json, ["delivery_id", "event_type", "status", "attempts", "last_error"])
            elif command == "replay":
                results = await _replay(args, store, settings)
                for r in results:
                    print(f"{r.delivery_id}  {r.status}  {r.error or ''}")
                print(f"replayed {len(results)}: {sum(r.status == 'sent' for r in results)} sent")
                return 0 if all(r.status == "sent" for r in results) else 1
            return 0

        result: int = asyncio.run(_with(url, run))
    return result


def add_webhooks_parser(sub: Any) -> None:
    p = sub.add_parser("webhooks", help="CRM webhook subscriptions: create, list, rotate, replay")
    p.add_argument(
        "--data-dir",
        default=os.environ.get("NPSLOOP_DATA_DIR", ".npsloop"),
        help="the embedded default's data dir (when DATABASE_URL is not set)",
    )
    ws = p.add_subparsers(dest="webhooks_command", required=True)

    def cmd(name: str, help_: str, with_id: bool = False) -> argparse.ArgumentParser:
        c: argparse.ArgumentParser = ws.add_parser(name, help=help_)
        c.add_argument("--tenant", required=True)
        if with_id:
            c.add_argument("id", help="the subscription id")
        return c

    c = cmd("create", "subscribe a URL to case events; the secret is printed once")
    c.add_argument("--url", required=True)
    c.add_argument("--event-type", action="append", required=True, help="case.opened, case.closed, ... or '*'")
    c.add_argument("--description")
    cmd("list", "list subscriptions (never secrets)").add_argument("--json", action="store_true")
    cmd("delete", "delete a subscription", with_id=True)
    r = cmd("rotate", "a new secret; the old one signs too during the overlap", with_id=True)
    r.add_argument("--overlap-s", type=int)
    cmd("enable", "re-enable a subscription disabled after failures", with_id=True)
    d = cmd("deliveries", "the webhook delivery log")
    d.add_argument("--subscription")
    d.add_argument("--status", choices=["pending", "retrying", "sent", "failed"])
    d.add_argument("--limit", type=int, default=50)
    d.add_argument("--json", action="store_true")
    rp = cmd("replay", "send failed deliveries again: one (--delivery) or a subscription's since a time")
    group = rp.add_mutually_exclusive_group(required=True)
    group.add_argument("--delivery")
    group.add_argument("--subscription")
    rp.add_argument("--since", help="ISO time (default: 24 hours ago), with --subscription")
    p.set_defaults(func=webhooks_command)
