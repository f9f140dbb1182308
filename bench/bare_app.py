"""The bare FastAPI endpoint bench.ingest compares ingest with: parse the JSON, answer 202.
No validation, no key, no Kafka: what FastAPI and uvicorn cost on this machine by themselves."""

from __future__ import annotations

from typing import Any

from fastapi import Body, FastAPI


def create_app() -> FastAPI:
    app = FastAPI(title="bare")

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/v1/feedback", status_code=202)
    async def feedback(body: dict[str, Any] = Body(...)) -> dict[str, str]:  # noqa: B008 - FastAPI's idiom
        return {"status": "accepted", "event_id": str(body.get("event_id", ""))}

    return app
