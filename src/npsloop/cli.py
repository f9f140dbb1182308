"""`npsloop run`: the whole loop in one process (in-memory bus, embedded Postgres, local mail)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def link_secret(data: Path) -> str:
    """The secret that signs unsubscribe and reply links, made once per data dir (mode 0600), so
    links in mail already sent keep working after a restart."""
    import secrets
    import stat

    path = data / "link-secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def run(args: argparse.Namespace) -> int:
    return serve(args)


def demo(args: argparse.Namespace) -> int:
    """A seeded quarter for four stores (see npsloop.demo), then the embedded default."""
    import asyncio

    from .demo import seed, write_stores

    data = Path(args.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    stores = write_stores(data)

    def seeded(url: str) -> None:
        n = asyncio.run(seed(url, data))
        print(f"demo: {n} events of the last quarter folded into the read model" if n else "demo: already seeded")

    return serve(args, {"stores_file": str(stores)}, before=seeded, open_browser=not args.no_open)


def _open_when_ready(base: str) -> None:
    import threading
    import time
    import urllib.request
    import webbrowser

    def wait_and_open() -> None:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                    if r.status == 200:
                        webbrowser.open(f"{base}/login")
                        return
            except OSError:
                pass
            time.sleep(0.5)

    threading.Thread(target=wait_and_open, daemon=True).start()


def serve(
    args: argparse.Namespace,
    overrides: dict[str, Any] | None = None,
    before: Callable[[str], None] | None = None,
    open_browser: bool = False,
) -> int:
    import uvicorn

    from npsloop_platform.bus import MemoryBus
    from npsloop_platform.logging import configure_logging

    from .loop import Loop

    data = Path(args.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    configure_logging(os.environ.get("NPSLOOP_LOG_LEVEL", "INFO"), json=args.json_logs, service="npsloop")
    pg = None
    url = os.environ.get("DATABASE_URL") or os.environ.get("NPSLOOP_DATABASE_URL")
    if not url:
        from npsloop_platform.embedded_pg import EmbeddedPostgres

        pg = EmbeddedPostgres(data / "pg")
        url = pg.start()
    try:
        import asyncio

        from .keys_cli import DEV_KEYS_FILE, ensure_dev_keys

        printed = asyncio.run(ensure_dev_keys(url, data))
        if printed:
            print(
                f"\nFirst run: development keys for tenant acme (shown once, also in {data / DEV_KEYS_FILE}, mode 0600):\n"
                f"{printed}\n",
                flush=True,
            )
        base = f"http://{args.host}:{args.port}"
        if before is not None:
            before(url)
        loop = Loop(
            MemoryBus(),
            url,
            mail_dir=data / "mail",
            call_task_dir=data / "call-tasks",
            log_json=args.json_logs,
            public_base_url=os.environ.get("NPSLOOP_PUBLIC_BASE_URL", base),
            link_secret=os.environ.get("NPSLOOP_LINK_SECRET") or link_secret(data),
            mode=os.environ.get("NPSLOOP_MODE", "dev"),
            call_quiet_hours=os.environ.get("NPSLOOP_CALL_QUIET_HOURS", ""),
            **(overrides or {}),
        )
        print(
            f"""
npsloop is running (in-memory bus, {"embedded Postgres in " + str(data / "pg") if pg else "DATABASE_URL"}).

  post feedback   . {data / DEV_KEYS_FILE}
                  curl -s -X POST {base}/v1/feedback -H "Authorization: Bearer $NPSLOOP_SOURCE_KEY" \\
                    -H 'Content-Type: application/json' \\
                    -d '{{"store_id":"berlin-1","channel":"pos","score":3,"comment":"Long wait at the till","customer_id":"c-42"}}'
  dashboard       {base}/  (sign in with NPSLOOP_MANAGER_KEY)
  API docs        {base}/docs
  emails          {data / "mail"}/new/
  webhooks        curl -s -X POST {base}/v1/webhook-subscriptions -H "Authorization: Bearer $NPSLOOP_ADMIN_KEY" \\
                    -H 'Content-Type: application/json' -d '{{"url":"http://127.0.0.1:9000/hook","event_types":["case.opened"]}}'
  call tasks      {data / "call-tasks"}/
  stop            Ctrl-C
""",
            flush=True,
        )
        if open_browser:
            print(f"  sign in with   NPSLOOP_MANAGER_KEY from {data / DEV_KEYS_FILE}\n", flush=True)
            _open_when_ready(base)
        # uvicorn re-raises SIGTERM after its graceful shutdown; as an exit it lets `finally` stop Postgres.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        # log_config=None: keep our masking handlers (uvicorn would put its own back otherwise)
        uvicorn.run(loop.app(), host=args.host, port=args.port, log_level="warning", log_config=None)
    finally:
        if pg is not None:
            pg.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="npsloop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="the whole loop in one process (the embedded default)")
    p_run.add_argument("--host", default="127.0.0.1")
    p_run.add_argument("--port", type=int, default=int(os.environ.get("NPSLOOP_HTTP_PORT", 8000)))
    p_run.add_argument("--data-dir", default=os.environ.get("NPSLOOP_DATA_DIR", ".npsloop"))
    p_run.add_argument("--json-logs", action="store_true", help="JSON logs (default: readable text)")
    p_run.set_defaults(func=run)
    p_demo = sub.add_parser("demo", help="a seeded quarter for four stores, then the embedded default")
    p_demo.add_argument("--host", default="127.0.0.1")
    p_demo.add_argument("--port", type=int, default=int(os.environ.get("NPSLOOP_HTTP_PORT", 8000)))
    p_demo.add_argument("--data-dir", default=os.environ.get("NPSLOOP_DEMO_DIR", ".npsloop-demo"))
    p_demo.add_argument("--json-logs", action="store_true", help="JSON logs (default: readable text)")
    p_demo.add_argument("--no-open", action="store_true", help="do not open a browser")
    p_demo.set_defaults(func=demo)
    from .keys_cli import add_keys_parser

    add_keys_parser(sub)
    from .import_cli import add_import_parser

    add_import_parser(sub)
    from .webhooks_cli import add_webhooks_parser

    add_webhooks_parser(sub)
    from .reporting_cli import add_reporting_parsers

    add_reporting_parsers(sub)
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except KeyboardInterrupt:  # Ctrl-C: uvicorn already shut down gracefully
        return 0
    return result


if __name__ == "__main__":
    sys.exit(main())
