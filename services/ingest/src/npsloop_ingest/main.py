"""The ingest app factory: `uvicorn --factory npsloop_ingest.main:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from npsloop_platform.app import ServiceParts, create_service_app
from npsloop_platform.bus import Bus

from .api.feedback import router as feedback_router
from .config import IngestSettings


def build(settings: IngestSettings, bus: Bus) -> ServiceParts:
    """The parts of ingest, for the app below or for the one-process embedded runner."""
    return ServiceParts(routers=[feedback_router])


def create_app(settings: IngestSettings | None = None, bus: Bus | None = None) -> FastAPI:
    return create_service_app(
        "ingest",
        settings or IngestSettings(),
        build,
        bus,
        description="Accepts NPS feedback and publishes it to Kafka. 202 only after the broker's ack.",
    )
