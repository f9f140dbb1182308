"""What every HTTP app does before a route sees a request, and how it answers bad input.

- A body over `max_body_bytes` gets 413 before anything parses it (Content-Length, or counted as
  it streams in). A `Content-Encoding` other than identity gets 415: bodies are plain JSON.
- Validation errors answer 422 with `loc`, `msg` and `type` per error, and never echo a large
  input: `input` is kept only when short (it may be 50 MB, or NaN, which JSON cannot even carry).
- A body that is not JSON at all (malformed UTF-8, nesting too deep for the parser) gets the same
  422 shape instead of FastAPI's bare 400.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

MAX_ECHO = 80


class BodyLimit:
    """413 for bodies over the limit, 415 for encoded bodies; checked before the body is parsed."""

    def __init__(self, app: Any, max_body_bytes: int, max_batch_body_bytes: int | None = None) -> None:
        self.app, self.single = app, max_body_bytes
        self.batch = max_batch_body_bytes or max_body_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        limit = self.batch if str(scope.get("path", "")).endswith(":batch") else self.single
        headers = dict(scope.get("headers", []))
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"", b"identity"):
            await _reject(
                send, 415, f"Content-Encoding {encoding.decode(errors='replace')!r} is not accepted: send plain JSON."
            )
            return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _reject(send, 413, f"The body is over the limit of {limit} bytes.")
            return
        seen = 0
        started = False

        async def limited_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _reject(send, 413, f"The body is over the limit of {limit} bytes.")


class _TooLarge(StarletteHTTPException):
    """Raised while the body streams in; FastAPI lets an HTTPException from the body through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The body is over the limit of {limit} bytes.")


async def _reject(send: Any, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _safe_input(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, str):
        short = value if len(value) <= MAX_ECHO else f"{value[:MAX_ECHO]}… ({len(value)} characters)"
        return short.encode("utf-8", "backslashreplace").decode()  # a lone surrogate cannot be sent as is
    return f"<{type(value).__name__}>"  # objects and lists are never echoed


def clean_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        item: dict[str, Any] = {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
        if "input" in e:
            item["input"] = _safe_input(e["input"])
        if isinstance(e.get("ctx"), dict):
            item["ctx"] = {
                k: v if isinstance(v, int | float | str) and _safe_input(v) == v else str(v)[:MAX_ECHO]
                for k, v in e["ctx"].items()
            }
        out.append(item)
    return out


UNAVAILABLE = {"detail": "A dependency (database or broker) is unavailable right now; retry the same request."}


def outage_response(exc: BaseException) -> JSONResponse | None:
    """A Postgres or Kafka outage in a request is a 503 with Retry-After (a client retries the same
    request: idempotent by event id), never a 500 that a client may treat as final. None: a fault."""
    from .retry import is_transient

    if isinstance(exc, _outage_types()) and is_transient(exc):
        return JSONResponse(status_code=503, content=UNAVAILABLE, headers={"Retry-After": "1"})
    return None


def _outage_types() -> tuple[type[Exception], ...]:
    """What may signal an outage: database errors (SQLAlchemy's and asyncpg's), socket errors, Kafka
    errors (if aiokafka is there). `is_transient` then tells an outage from a fault."""
    from sqlalchemy.exc import DBAPIError

    types: tuple[type[Exception], ...] = (DBAPIError, OSError)
    with contextlib.suppress(ImportError):
        from aiokafka.errors import KafkaError

        types += (KafkaError,)
    with contextlib.suppress(ImportError):  # hot statements run on asyncpg directly (db.driver_connection)
        import asyncpg

        types += (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)
    return types


def install_error_handlers(app: FastAPI) -> None:
    async def outage(request: Request, exc: Exception) -> JSONResponse:
        response = outage_response(exc)
        if response is None:
            raise exc
        return response

    for exc_type in _outage_types():
        app.add_exception_handler(exc_type, outage)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": clean_errors(exc.errors())})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            detail = [
                {
                    "loc": ["body"],
                    "msg": "The body is not valid JSON in UTF-8 (or nests too deep).",
                    "type": "json_invalid",
                }
            ]
            return JSONResponse(status_code=422, content={"detail": detail})
        return JSONResponse(
            status_code=exc.status_code, content={"detail": exc.detail}, headers=getattr(exc, "headers", None)
        )


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen = dict(pairs)  # in C; a key repeated makes it shorter
    if len(seen) != len(pairs):
        names: set[str] = set()
        for key, _ in pairs:
            if key in names:
                raise ValueError(key)
            names.add(key)
    return seen


def loads_strict(body: bytes) -> Any:
    """The body as JSON, refusing a repeated key (json.JSONDecodeError) and malformed UTF-8
    (UnicodeDecodeError), as StrictJsonRequest parses it."""
    text = body.decode()
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            raise
        raise json.JSONDecodeError(f"duplicate key {exc.args[0]!r}", text, 0) from None


class StrictJsonRequest(Request):
    """A request whose JSON body may not repeat a key: `{"score": 1, "score": 9}` is ambiguous, and
    parsers disagree on which one wins (Python's takes the last)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """Route class for endpoints that take JSON: duplicate keys are a 422 (json_invalid)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler
