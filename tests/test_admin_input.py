"""The admin key API refuses what PostgreSQL cannot store with a 422 naming the field (the fuzzer
found a 500 for a NUL in a key's name), and its OpenAPI document says so with the error shape."""

from __future__ import annotations

import httpx
import pytest

from npsloop.loop import Loop


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"role": "admin", "name": "\u0000\u0093$8"}, ["body", "name"]),
        ({"role": "source", "stores": ["berlin\x00"]}, ["body", "stores", 0]),
        ({"role": "source", "stores": [""]}, ["body", "stores", 0]),
        (b'{"role": "source", "name": "x\\ud800"}', ["body", "name"]),  # a lone surrogate, as JSON escapes it
    ],
)
async def test_bad_key_fields_are_422(loop: Loop, client: httpx.AsyncClient, body: object, loc: object) -> None:
    if isinstance(body, bytes):
        r = await client.post("/v1/admin/keys", content=body, headers={"Content-Type": "application/json"})
    else:
        r = await client.post("/v1/admin/keys", json=body)
    assert r.status_code == 422, r.text
    if loc is not None:
        assert r.json()["detail"][0]["loc"] == loc
    assert all(k["name"] is None or "\x00" not in k["name"] for k in (await client.get("/v1/admin/keys")).json()["keys"])


async def test_every_authenticated_operation_documents_the_key_and_its_errors(loop: Loop, client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert doc["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    public = {"/healthz", "/readyz", "/metrics"}
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            if path in public or path.startswith("/unsubscribe") or path.startswith("/v1/public"):
                continue
            assert op.get("security") == [{"apiKey": []}], (method, path)
            for status in ("401", "403", "404"):
                example = op["responses"][status]["content"]["application/json"]["example"]
                assert example["detail"], (method, path, status)
            if "requestBody" in op:
                media = op["requestBody"]["content"]["application/json"]
                assert media.get("examples") or media.get("example"), (method, path, "request example")
