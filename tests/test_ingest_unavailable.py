"""A broker that is down gets 503 with Retry-After, and nothing is acknowledged."""

from __future__ import annotations

import httpx

from npsloop_ingest.config import IngestSettings
from npsloop_ingest.main import create_app
from npsloop_platform.bus.kafka import KafkaBus
from npsloop_platform.testing.helpers import bearer, feedback_body, make_key
from npsloop_platform.testing.servers import free_port


async def test_broker_down_answers_503_with_retry_after(database_url: str) -> None:
    key = await make_key(database_url, "source")
    bus = KafkaBus(f"127.0.0.1:{free_port()}", request_timeout_ms=2000)  # nothing listens there
    settings = IngestSettings(publish_timeout_s=1.0, retry_after_s=7, log_json=False, database_url=database_url)
    app = create_app(settings, bus)
    async with app.router.lifespan_context(app):  # starts the bus, migrates, as uvicorn would
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://i", headers=bearer(key)) as client:
            response = await client.post(
                "/v1/feedback", json=feedback_body(5, event_id="0f8fad5b-d9cb-469f-a165-70867728950e")
            )
            ready = await client.get("/readyz")
            live = await client.get("/healthz")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
    assert response.json()["event_id"] == "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert "nothing was accepted" in response.json()["detail"]
    assert ready.status_code == 503 and ready.json()["checks"]["kafka"] is False
    assert live.status_code == 200  # liveness never depends on the broker


async def test_malformed_body_gets_422_naming_field_and_reason(database_url: str) -> None:
    key = await make_key(database_url, "source")
    app = create_app(IngestSettings(bus="memory", log_json=False, database_url=database_url))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://i", headers=bearer(key)) as client,
    ):
        cases = {
            "score": feedback_body(11),
            "occurred_at": feedback_body(5, occurred_at="2026-11-01T10:00:00"),
            "channel": feedback_body(5, channel="carrier-pigeon"),
            "comentt": feedback_body(5, comentt="typo'd field"),
            "tenant_id": feedback_body(5, tenant_id="not a tenant!"),
        }
        for field, body in cases.items():
            response = await client.post("/v1/feedback", json=body)
            assert response.status_code == 422, (field, response.text)
            locs = [d["loc"][-1] for d in response.json()["detail"]]
            assert field in locs, (field, response.json())
            assert all(d["msg"] for d in response.json()["detail"])
        bad_json = await client.post("/v1/feedback", content=b"{oops", headers={"Content-Type": "application/json"})
        assert bad_json.status_code == 422
