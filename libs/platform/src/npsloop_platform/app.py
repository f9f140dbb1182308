"""The app factory every service shares: components started in the lifespan, /healthz, /readyz."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse


class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def ready(self) -> bool: ...


def create_app(
    title: str,
    components: Sequence[Component],
    routers: Sequence[APIRouter] = (),
    state: dict[str, Any] | None = None,
    **fastapi_kwargs: Any,
) -> FastAPI:
    """Components start in order and stop in reverse order (SIGTERM -> uvicorn -> lifespan exit)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started: list[Component] = []
        try:
            for component in components:
                await component.start()
                started.append(component)
            yield
        finally:
            for component in reversed(started):
                await component.stop()

    app = FastAPI(title=title, lifespan=lifespan, **fastapi_kwargs)
    for key, value in (state or {}).items():
        setattr(app.state, key, value)
    app.state.components = list(components)

    @app.get("/healthz", tags=["ops"], summary="Liveness: the process is up (never checks the broker).")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="Readiness: every dependency (broker, database) answers.")
    async def readyz() -> JSONResponse:
        results = await asyncio.gather(*(c.ready() for c in components), return_exceptions=True)
        checks = {c.name: r is True for c, r in zip(components, results, strict=True)}
        ok = all(checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, 200 if ok else 503)

    for router in routers:
        app.include_router(router)
    return app


def create_service_app(
    name: str,
    settings: Any,
    build: Any,
    bus: Any = None,
    **fastapi_kwargs: Any,
) -> FastAPI:
    """Standard service app: logging, the bus named by settings, then `build(settings, bus)` parts.

    `build` returns (components, routers); the embedded runner calls the same `build` functions
    to put all four services in one process on one bus.
    """
    from .bus import make_bus
    from .logging import configure_logging

    configure_logging(settings.log_level, settings.log_json, name)
    bus = bus or make_bus(settings)
    components, routers = build(settings, bus)
    return create_app(
        f"npsloop {name}",
        [bus, *components],
        routers,
        state={"bus": bus, "settings": settings},
        **fastapi_kwargs,
    )
