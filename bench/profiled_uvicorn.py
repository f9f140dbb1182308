"""`uvicorn` for `bench.e2e --profile`: exits normally after SIGTERM, so that cProfile writes its stats.

uvicorn re-raises the signal it caught once its graceful shutdown is done; with the default
handler that kills the process before `python -m cProfile -o FILE` could dump. Here the handler in
place at that point raises SystemExit instead.
"""

from __future__ import annotations

import signal
import sys
from typing import Any


def _exit(signum: int, _frame: Any) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)
    from uvicorn.main import main

    sys.exit(main())
