"""The app factory every service shares: typed state, components started in the lifespan,
/healthz and /readyz, and the dependency aliases routes use (`BusDep`, `DbDep`, `StateDep`)."""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from .bus import Bus
from .component import Component
from .consumer import EventConsumer
from .db import Database
from .http_edge import BodyLimit, install_error_handlers
from .metrics import HttpMetrics
from .metrics import render as render_metrics
from .openapi_docs import document
from .settings import PlatformSettings

__all__ = [
    "AppState",
    "BusDep",
    "Component",
    "DbDep",
    "ServiceParts",
    "StateDep",
    "create_app",
    "create_service_app",
    "settings_dependency",
]

S = TypeVar("S", bound=PlatformSettings)


@dataclass
class ServiceParts:
    """What a service's `build(settings, bus)` returns: its parts, named, so nobody searches for them."""

    components: list[Component] = field(default_factory=list)
    routers: list[APIRouter] = field(default_factory=list)
    db: Database | None = None
    consumers: list[EventConsumer] = field(default_factory=list)
    keys: Any = None  # an access.KeyStore, when the service serves authenticated routes
    extras: dict[str, Any] = field(default_factory=dict)  # service-specific parts routes need, by name
    # ASGI middleware classes run innermost, after the body limit, security headers and metrics
    # (ingest's fast path for POST /v1/feedback).
    middleware: list[Any] = field(default_factory=list)


@dataclass
class AppState:
    """Everything a route may need, typed; kept on `app.state.npsloop`."""

    bus: Bus
    settings: PlatformSettings
    db: Database | None = None
    keys: Any = None  # the access.KeyStore, where the app authenticates callers
    session_secret: bytes = b""  # signs the dashboard's session cookie
    extras: dict[str, Any] = field(default_factory=dict)  # service-specific parts, by name
    components: list[Component] = field(default_factory=list)
    embedded: Any = None  # the one-process Loop, for the embedded dashboard


# Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in a worker
# thread, a thread hop per request that cost more CPU than the rest of ingest's handler.


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.npsloop
    return state


async def get_state(request: Request) -> AppState:
    return state_of(request)


async def get_bus(request: Request) -> Bus:
    return state_of(request).bus


async def get_db(request: Request) -> Database:
    db = state_of(request).db
    if db is None:
        raise RuntimeError("this app has no database; the route was mounted on the wrong service")
    return db


StateDep = Annotated[AppState, Depends(get_state)]
BusDep = Annotated[Bus, Depends(get_bus)]
DbDep = Annotated[Database, Depends(get_db)]


def settings_dependency(cls: type[S]) -> Callable[[Request], Awaitable[S]]:
    """A dependency returning the app's settings as `cls` (a service's own settings class)."""

    async def dependency(request: Request) -> S:
        settings = state_of(request).settings
        if not isinstance(settings, cls):
            raise RuntimeError(f"this app runs with {type(settings).__name__}, not {cls.__name__}")
        return settings

    return dependency


_CSP = (
    b"default-src 'self'; style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: "
    b"https://fastapi.tiangolo.com; frame-ancestors 'none'"
)


class SecurityHeaders:
    """Adds security headers to every response: nosniff and no referrer everywhere; on pages a
    Content-Security-Policy with frame-ancestors and X-Frame-Options; HSTS when served over HTTPS."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https" or (b"x-forwarded-proto", b"https") in scope.get("headers", [])

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html"):
                    extra += [(b"content-security-policy", _CSP), (b"x-frame-options", b"DENY")]
                if https:
                    extra.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
                message = {**message, "headers": headers + [(k, v) for k, v in extra if k not in names]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_http_hygiene(app: FastAPI, cors_origins: Sequence[str]) -> None:
    """Security headers on every response; CORS only for the origins configured (none by default)."""
    from starlette.middleware.cors import CORSMiddleware

    # A plain ASGI middleware: Starlette's @app.middleware("http") (BaseHTTPMiddleware) doubled
    # ingest's CPU per request in the benchmark.
    app.add_middleware(SecurityHeaders)

    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )


#: FastAPI's own OpenTelemetry (FastAPI 0.16x) off: `tracing` makes our HTTP and Kafka spans, on
#: our provider. FastAPI's would add a second server span per request wherever a process-wide
#: provider is set (`opentelemetry-instrument`, a vendor's agent), and even unused it asked the
#: global providers on every request whether to record (~6 us, about 1.5% of a single post).
_NO_NATIVE_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


def create_app(
    title: str,
    components: Sequence[Component],
    routers: Sequence[APIRouter],
    state: AppState,
    middleware: Sequence[Any] = (),
    **fastapi_kwargs: Any,
) -> FastAPI:
    """Components start in order and stop in reverse order (SIGTERM -> uvicorn -> lifespan exit).
    `middleware`: ASGI middleware classes that run innermost, in this order."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started: list[Component] = []
        try:
            for component in components:
                await component.start()
                started.append(component)
            # What exists now (modules, FastAPI's routes, pydantic's validators: ~100,000 objects)
            # lives as long as the process. Out of the collector's sight, a full collection takes
            # ~2 ms instead of ~100 ms: under load ingest ran one every second or two, 7% of its
            # CPU and most of its p99. Unfrozen at shutdown, so a process that starts many apps
            # (the tests) can still collect what a stopped one left.
            gc.freeze()
            yield
        finally:
            gc.unfreeze()
            for component in reversed(started):
                await component.stop()

    app = FastAPI(title=title, lifespan=lifespan, **(_NO_NATIVE_TELEMETRY | fastapi_kwargs))
    state.components = list(components)
    app.state.npsloop = state
    for cls in reversed(middleware):  # each add_middleware wraps what is there: added first, runs innermost
        app.add_middleware(cls)
    add_http_hygiene(app, getattr(state.settings, "cors_origins", []))
    app.add_middleware(
        BodyLimit,
        max_body_bytes=getattr(state.settings, "max_body_bytes", 1 << 20),
        max_batch_body_bytes=getattr(state.settings, "max_batch_body_bytes", 5 << 20),
    )
    install_error_handlers(app)
    app.add_middleware(HttpMetrics)  # outermost: counts every answer, a 413 from BodyLimit too
    scrape_hooks = [hook for c in components if (hook := getattr(c, "scrape", None)) is not None]

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics (text format).", response_class=PlainTextResponse)
    async def metrics() -> Response:
        body, content_type = await render_metrics(scrape_hooks)
        return Response(body, media_type=content_type)

    @app.get("/healthz", tags=["ops"], summary="Liveness: the process is up (never checks the broker).")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Readiness: every dependency (broker, database) answers and no consumer is stuck.",
    )
    async def readyz() -> JSONResponse:
        results = await asyncio.gather(*(c.ready() for c in components), return_exceptions=True)
        checks = {c.name: r is True for c, r in zip(components, results, strict=True)}
        ok = all(checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, 200 if ok else 503)

    for router in routers:
        app.include_router(router)
    document(app)
    return app


def create_service_app(
    name: str,
    settings: S,
    build: Callable[[S, Bus], ServiceParts],
    bus: Bus | None = None,
    **fastapi_kwargs: Any,
) -> FastAPI:
    """Standard service app: logging, the bus named by settings, then the parts `build` returns.

    The embedded runner calls the same `build` functions to put all services in one process.
    """
    from . import tracing
    from .bus import make_bus
    from .logging import configure_logging

    configure_logging(settings.log_level, settings.log_json, name)
    tracing.configure(name, settings.tracing)
    bus = bus or make_bus(settings)
    parts = build(settings, bus)
    return create_app(
        f"npsloop {name}",
        [bus, *parts.components, *([tracing.TracingComponent()] if tracing.enabled() else [])],
        parts.routers,
        AppState(bus=bus, settings=settings, db=parts.db, keys=parts.keys, extras=parts.extras),
        parts.middleware,
        **fastapi_kwargs,
    )
