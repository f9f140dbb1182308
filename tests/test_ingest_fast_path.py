"""Ingest's fast path for POST /v1/feedback (`npsloop_ingest.api.fast`) answers exactly as the
FastAPI route it bypasses: the same requests, sent to an app with it and to one without, get the
same status, body and headers. And it really is the path a plain post takes."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from npsloop.loop import Loop
from npsloop_ingest.api.fast import FeedbackFastPath
from npsloop_ingest.ratelimit import RateLimiter
from npsloop_platform.access import Role
from npsloop_platform.http_edge import StrictJsonRequest
from npsloop_platform.testing.helpers import bearer, feedback_body

JSON = {"Content-Type": "application/json"}
VOLATILE = {"date", "content-length", "ratelimit-remaining", "ratelimit-reset", "retry-after"}  # clock-dependent


@pytest.fixture
async def clients(loop: Loop) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """'fast': the app as served; 'route': the same app without the fast path."""
    fast = loop.app(manage_bus=False, manage_components=False)
    route = loop.app(manage_bus=False, manage_components=False)
    assert any(m.cls is FeedbackFastPath for m in fast.user_middleware)
    route.user_middleware = [m for m in route.user_middleware if m.cls is not FeedbackFastPath]
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=fast), base_url="http://npsloop") as f,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=route), base_url="http://npsloop") as r,
    ):
        yield {"fast": f, "route": r}


def normalized(response: httpx.Response, ids: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
    """Status, JSON body and headers, with event ids replaced by their role in the scenario."""
    text = response.text
    for real, role in ids.items():
        text = text.replace(real, role)
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = text
    if isinstance(body, dict):
        for field in ("event_id", "correlation_id"):
            if field in body and body[field] not in ids.values():
                body[field] = "<generated>"
    headers = {k: "<present>" if k in VOLATILE else v for k, v in response.headers.items()}
    return response.status_code, body, headers


async def scenario(client: httpx.AsyncClient, keys: dict[str, str], app: Any) -> list[tuple[int, Any, dict[str, str]]]:
    """Every kind of post, with ids of its own (both apps share one idempotency table)."""
    ids = {str(uuid.uuid4()): f"<id{i}>" for i in range(3)}
    id0, id1, _ = ids
    idem = f"order-{uuid.uuid4()}"
    admin, source, scoped, manager = (bearer(keys[k]) for k in ("admin", "source", "scoped", "manager"))
    good = json.dumps(feedback_body(9, comment="Great", event_id=id0)).encode()
    requests: list[tuple[dict[str, str], bytes]] = [
        ({**JSON, **admin}, json.dumps(feedback_body(3)).encode()),  # accepted, new id
        ({**JSON, **source}, good),  # accepted
        ({**JSON, **source}, good),  # duplicate
        ({**JSON, **source}, json.dumps(feedback_body(2, event_id=id0)).encode()),  # conflict
        ({**JSON, **source, "Idempotency-Key": idem}, json.dumps(feedback_body(7)).encode()),
        ({**JSON, **source, "Idempotency-Key": idem}, json.dumps(feedback_body(7)).encode()),
        ({**JSON, **source, "Idempotency-Key": "k" * 256}, json.dumps(feedback_body(7)).encode()),
        ({**JSON, **source, "Idempotency-Key": ""}, json.dumps(feedback_body(7)).encode()),
        ({**JSON, **scoped}, json.dumps(feedback_body(5, store_id="hamburg-2")).encode()),  # out of its stores
        ({**JSON, **scoped}, json.dumps(feedback_body(5, event_id=id1)).encode()),  # in its stores
        ({**JSON, **source}, json.dumps(feedback_body(5, tenant_id="other")).encode()),
        ({**JSON, **manager}, json.dumps(feedback_body(5)).encode()),
        (JSON, json.dumps(feedback_body(5)).encode()),
        ({**JSON, "Authorization": "Basic abc"}, json.dumps(feedback_body(5)).encode()),
        ({**JSON, "Authorization": "Bearer npsk_nope_nope"}, json.dumps(feedback_body(5)).encode()),
        ({**source, "Content-Type": "text/plain"}, json.dumps(feedback_body(5)).encode()),
        ({**source, "Content-Type": "application/json; charset=utf-8"}, json.dumps(feedback_body(5)).encode()),
        ({**JSON, **source}, b'{"store_id": "berlin-1", "channel": "pos", "score": 5, "score": 6}'),
        ({**JSON, **source}, b'{"store_id": "berlin-1", "channel": "pos", "score": 11}'),
        ({**JSON, **source}, b'{"store_id": "berlin-1", "channel": "pos", "score": 5'),
        ({**JSON, **source}, b"[" * 5000 + b"]" * 5000),
        ({**JSON, **source}, b""),
        ({**JSON, **source}, b'{"store_id": "\xff", "channel": "pos", "score": 5}'),
    ]
    out = []
    for headers, body in requests:
        out.append(normalized(await client.post("/v1/feedback", content=body, headers=headers), ids))
    # Two Authorization headers: whichever the route takes, the fast path takes the same.
    twice = httpx.Headers([("content-type", "application/json"), *admin.items(), *bearer("npsk_x_y").items()])
    out.append(
        normalized(await client.post("/v1/feedback", content=json.dumps(feedback_body(4)).encode(), headers=twice), ids)
    )
    app.state.rate_limiter = RateLimiter(0.001, 1)  # one post, then 429
    for _ in range(2):
        response = await client.post(
            "/v1/feedback", content=json.dumps(feedback_body(8)).encode(), headers={**JSON, **admin}
        )
        out.append(normalized(response, ids))
    return out


async def test_the_fast_path_answers_every_post_as_the_route_does(
    loop: Loop, clients: dict[str, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = {
        "admin": (await loop.keys.create("acme", Role.ADMIN, None, actor="test"))[0],
        "source": (await loop.keys.create("acme", Role.SOURCE, None, actor="test"))[0],
        "scoped": (await loop.keys.create("acme", Role.SOURCE, ["berlin-1"], actor="test"))[0],
        "manager": (await loop.keys.create("acme", Role.MANAGER, None, actor="test"))[0],
    }
    parsed_by_route = {"fast": 0, "route": 0}
    answers = {}
    real_json = StrictJsonRequest.json
    for name, client in clients.items():

        async def counting(self: StrictJsonRequest, name: str = name) -> Any:
            parsed_by_route[name] += 1
            return await real_json(self)

        monkeypatch.setattr(StrictJsonRequest, "json", counting)
        app = client._transport.app  # type: ignore[attr-defined]
        answers[name] = await scenario(client, keys, app)
    statuses = [a[0] for a in answers["route"]]
    assert statuses.count(202) >= 5 and {200, 401, 403, 409, 422, 429} <= set(statuses), statuses
    for i, (fast, route) in enumerate(zip(answers["fast"], answers["route"], strict=True)):
        assert fast == route, (i, fast, route, answers["fast"][i - 1], answers["route"][i - 1])
    # A plain post never reaches the route's body parsing behind the fast path; without it, it does.
    for name, client in clients.items():
        client._transport.app.state.rate_limiter = RateLimiter(1000, 1000)  # type: ignore[attr-defined]
        before = parsed_by_route[name]
        response = await client.post("/v1/feedback", json=feedback_body(6), headers=bearer(keys["source"]))
        assert response.status_code == 202
        assert parsed_by_route[name] == before + (0 if name == "fast" else 1), (name, parsed_by_route)


def _outages() -> list[BaseException]:
    import asyncpg

    return [
        ConnectionRefusedError(111, "Connect call failed"),
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    ]


@pytest.mark.parametrize("path", ["fast", "route"])
async def test_a_database_outage_is_a_503_to_retry_on_either_path(loop: Loop, admin_key: str, path: str) -> None:
    """Found by the chaos run: the claim runs on asyncpg directly, whose errors are not SQLAlchemy's;
    a PostgreSQL restart answered 500 (final for many clients) instead of 503 (retry)."""
    app = loop.app(manage_bus=False, manage_components=False)
    if path == "route":
        app.user_middleware = [m for m in app.user_middleware if m.cls is not FeedbackFastPath]
    store = next(p.extras["idempotency"] for p in loop.parts if "idempotency" in p.extras)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://npsloop") as client:
        for error in _outages():

            async def down(items: Any, error: BaseException = error) -> Any:
                raise error

            store.claim_now = down  # type: ignore[method-assign]
            response = await client.post("/v1/feedback", json=feedback_body(5), headers=bearer(admin_key))
            assert response.status_code == 503, (type(error).__name__, response.status_code, response.text)
            assert response.headers["retry-after"] == "1" and "retry" in response.json()["detail"]
