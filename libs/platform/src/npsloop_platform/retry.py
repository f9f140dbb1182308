"""One retry helper for every loop that waits out an outage, and the classification of errors.

* `is_transient(exc)`: is this an outage of something remote (Kafka, Postgres, a socket), which
  goes away by itself? Local file, permission and configuration errors are *not*: retrying them
  for minutes with messages queued behind them only hides the fault.
* `retrying(...)`: call a coroutine until it succeeds, with exponential backoff and jitter
  (tenacity), forever for transient errors and `max_attempts` times for the rest; interrupted at
  once, with `Stopped`, when the component's `stopping` event is set.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

log = logging.getLogger(__name__)
T = TypeVar("T")

#: OSError numbers that mean "the other side is unreachable right now", not "this machine is misconfigured".
_NETWORK_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ENETDOWN,
    errno.ETIMEDOUT,
    errno.EPIPE,
    errno.EADDRNOTAVAIL,
}


class Stopped(Exception):
    """The component is stopping: the retry loop gave up waiting, nothing failed."""


def is_transient(exc: BaseException) -> bool:
    """Outages of Kafka, Postgres or the network: retried forever. Everything else is a fault."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if isinstance(exc, FileNotFoundError) and exc.filename is None:
        # connecting to Postgres' Unix socket while the server restarts: the socket file is gone
        # (`open()` of a missing file names it, a socket connect does not)
        return True
    try:
        from aiokafka.errors import KafkaError

        if isinstance(exc, KafkaError):
            return True
    except ImportError:  # pragma: no cover
        pass
    try:
        from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

        if isinstance(exc, OperationalError | InterfaceError):
            return True
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, DBAPIError) and isinstance(exc.orig, BaseException) and exc.orig is not exc:
            # SQLAlchemy wraps some driver errors in a bare DBAPIError: "the database system is
            # shutting down" (asyncpg's CannotConnectNowError) while Postgres restarts
            orig = exc.orig.__cause__ if exc.orig.__cause__ is not None else exc.orig
            return is_transient(orig) or is_transient(exc.orig)
    except ImportError:  # pragma: no cover
        pass
    try:
        import asyncpg

        e = asyncpg.exceptions
        outage = (
            e.ConnectionDoesNotExistError
            | e.CannotConnectNowError
            | e.AdminShutdownError
            | e.CrashShutdownError
            | e.PostgresConnectionError
        )
        if isinstance(exc, outage):
            return True
        if type(exc) is e.InterfaceError and "connection is closed" in str(exc):
            return True  # the server closed it (a restart) after it was taken from the pool
        if isinstance(exc, asyncpg.InternalClientError) and re.search(r"another operation .*in progress", str(exc)):
            # Found by the fast chaos run: during a PostgreSQL restart, a pooled connection was
            # handed out with a statement of an earlier user still under way (5 claims answered
            # 500). The statement that meets it fails, its connection is dropped; a retry is new.
            return True
    except ImportError:  # pragma: no cover
        pass
    if isinstance(exc, OSError):
        # socket.gaierror (DNS) is an OSError without errno in the table; FileNotFoundError,
        # PermissionError, IsADirectoryError... are local faults and are not retried forever.
        import socket

        return isinstance(exc, socket.gaierror) or exc.errno in _NETWORK_ERRNOS
    return False


async def wait_or_stop(stopping: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; True when `stopping` was set (at once, or during the sleep)."""
    if stopping.is_set():
        return True
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def retrying(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    stopping: asyncio.Event,
    transient: Callable[[BaseException], bool] = is_transient,
    fatal: Callable[[BaseException], bool] = lambda exc: False,
    max_attempts: int | None = None,
    initial_s: float = 0.2,
    max_s: float = 10.0,
    on_retry: Callable[[BaseException, bool], None] | None = None,
    log_extra: Mapping[str, str] | None = None,
) -> T:
    """Return `await attempt()` once it succeeds.

    Transient errors are retried until `stopping` is set; other errors `max_attempts` times in
    all (None: forever), after which the last one is raised; `fatal` ones at once. Raises `Stopped` when `stopping` is
    set while waiting. `on_retry(exc, transient)` runs before each wait (stats, health); `log_extra` goes on each
    log line (e.g. the event_id and correlation_id of the message in hand).
    """
    faults = 0

    def give_up(state: RetryCallState) -> bool:
        nonlocal faults
        exc = state.outcome.exception() if state.outcome else None
        if exc is None:
            return False
        if fatal(exc):
            return True
        is_t = transient(exc)
        faults += 0 if is_t else 1
        if max_attempts is not None and not is_t and faults >= max_attempts:
            return True
        if on_retry is not None:
            on_retry(exc, is_t)
        return False

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s failed, retrying in %.2fs: %s: %s", what, wait, type(exc).__name__, exc, extra=dict(log_extra or {})
        )

    async def sleep(seconds: float) -> None:
        if await wait_or_stop(stopping, seconds):
            raise Stopped(what)

    if stopping.is_set():
        raise Stopped(what)
    async for try_ in AsyncRetrying(
        wait=wait_exponential_jitter(multiplier=initial_s, max=max_s, jitter=initial_s),
        retry=retry_if_exception(lambda e: not isinstance(e, Stopped | asyncio.CancelledError)),
        stop=give_up,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    ):
        with try_:
            return await attempt()
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover
