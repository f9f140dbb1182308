"""Bad input at ingest gets a precise 4xx naming the field, and nothing is published; what is
accepted reaches its outcome. Each defect an outside probe of `make run` found has a case here.
Runs on the in-memory bus and on real Kafka."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import text

from npsloop.loop import Loop
from npsloop_platform.testing.helpers import eventually, feedback_body, read_all
from npsloop_schemas import Topics

JSON = {"Content-Type": "application/json"}


def raw(score: str = "5", **fields: str) -> bytes:
    """A body written by hand, for what json.dumps cannot write (NaN, lone surrogates, bad UTF-8)."""
    extra = "".join(f', "{k}": {v}' for k, v in fields.items())
    return f'{{"store_id": "berlin-1", "channel": "pos", "score": {score}{extra}}}'.encode()


async def published(loop: Loop) -> int:
    return len(await read_all(loop.bus, Topics.FEEDBACK_RECEIVED))


async def test_each_bad_body_gets_a_precise_422_and_nothing_is_published(loop: Loop, client: httpx.AsyncClient) -> None:
    cases: dict[str, tuple[bytes, list[str]]] = {
        "NaN score": (raw("NaN"), ["body", "score"]),
        "Infinity score": (raw("Infinity"), ["body", "score"]),
        "1e400 score": (raw("1e400"), ["body", "score"]),
        "7.5 score": (raw("7.5"), ["body", "score"]),
        "NaN in contact.name": (raw(contact='{"name": NaN}'), ["body", "contact", "name"]),
        "lone surrogate": (raw(comment='"x\\ud800"'), ["body", "comment"]),
        "NUL in comment": (raw(comment='"long\\u0000wait"'), ["body", "comment"]),
        "NUL in store_id": (raw().replace(b'"berlin-1"', b'"berlin\\u00001"'), ["body", "store_id"]),
        "unknown key in contact": (
            raw(contact='{"email": "a@b.co", "nickname": "x"}'),
            ["body", "contact", "nickname"],
        ),
        "occurred_at as a number": (raw(occurred_at="1732518000"), ["body", "occurred_at"]),
        "occurred_at in 9999": (raw(occurred_at='"9999-01-01T00:00:00Z"'), ["body", "occurred_at"]),
        "occurred_at in 1999": (raw(occurred_at='"1999-12-31T00:00:00Z"'), ["body", "occurred_at"]),
        "an array for an object": (raw(contact='["a@b.co"]'), ["body", "contact"]),
        "malformed UTF-8": (b'{"store_id": "\xff\xfe", "channel": "pos", "score": 5}', ["body"]),
        "nested 50,000 deep": (b"[" * 50_000 + b"]" * 50_000, ["body"]),
        "a duplicate key": (raw("1").replace(b"}", b', "score": 9}'), ["body"]),
        "a duplicate key inside contact": (raw(contact='{"email": "a@b.co", "email": "c@d.co"}'), ["body"]),
    }
    for name, (body, loc) in cases.items():
        response = await client.post("/v1/feedback", content=body, headers=JSON)
        assert response.status_code == 422, (name, response.status_code, response.text[:300])
        locs = [d["loc"] for d in response.json()["detail"]]
        assert any(list(map(str, got[: len(loc)])) == loc for got in locs), (name, locs)
        assert all(d["msg"] for d in response.json()["detail"]), name
    assert await published(loop) == 0


async def test_a_422_never_echoes_a_large_input(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/feedback", json=feedback_body(5, comment="x" * 900_000))
    assert response.status_code == 422
    assert len(response.content) < 2_000 and "900000 characters" in response.text


async def test_bodies_over_the_limit_get_413_and_encoded_bodies_415(loop: Loop, client: httpx.AsyncClient) -> None:
    big = json.dumps(feedback_body(5, comment="x" * (2 << 20))).encode()
    assert (await client.post("/v1/feedback", content=big, headers=JSON)).status_code == 413

    async def chunks():  # no Content-Length: counted as it streams in
        for _ in range(40):
            yield b" " * 65_536

    streamed = await client.post("/v1/feedback", content=chunks(), headers=JSON)
    assert streamed.status_code == 413 and "limit" in streamed.json()["detail"]
    gz = await client.post("/v1/feedback", json=feedback_body(5), headers={"Content-Encoding": "gzip"})
    assert gz.status_code == 415
    assert await published(loop) == 0


async def test_a_nul_in_the_query_string_is_a_422_not_a_500(client: httpx.AsyncClient) -> None:
    for path, params in (("/v1/cases", {"tenant_id": "acme\x00"}), ("/v1/nps", {"store_id": "berlin\x001"})):
        response = await client.get(path, params=params)
        assert response.status_code == 422, (path, response.text)


async def test_a_score_of_10_point_0_is_accepted_and_reaches_its_outcome(loop: Loop, client: httpx.AsyncClient) -> None:
    # JSON Schema's "integer" admits 10.0, so producers validating with it send it; so must we.
    assert (
        await client.post("/v1/feedback", content=raw("10.0", customer_id='"c-10"'), headers=JSON)
    ).status_code == 202
    tenant_text = feedback_body(3, comment="caf\u0065\u0301")  # decomposed: stored NFC-normalised
    assert (await client.post("/v1/feedback", json=tenant_text)).status_code == 202

    async def stored() -> bool:
        async with loop.actions_db.session() as session:
            rows = (await session.execute(text("SELECT score, comment FROM actions.feedback ORDER BY score"))).all()
        return len(rows) == 2

    await eventually(stored, timeout=30, what="both feedbacks stored")
    async with loop.actions_db.session() as session:
        rows = (await session.execute(text("SELECT score, comment FROM actions.feedback ORDER BY score"))).all()
    assert rows[0] == (3, "caf\u00e9") and rows[1][0] == 10


@pytest.mark.parametrize("where", ["comment", "store_id"])
async def test_a_nul_from_another_producer_still_reaches_its_outcome(loop: Loop, where: str) -> None:
    from npsloop_platform.testing.helpers import feedback_event_json

    extra = {"comment": "long\x00wait", "store_id": "berlin-1"} | (
        {"store_id": "ber\x00lin"} if where == "store_id" else {}
    )
    await loop.bus.publish(Topics.FEEDBACK_RECEIVED, feedback_event_json(2, **extra), key="acme:c-nul")

    async def case_opened() -> bool:
        async with loop.actions_db.session() as session:
            return bool((await session.execute(text("SELECT count(*) FROM actions.cases"))).scalar_one())

    await eventually(case_opened, timeout=30, what="the case of a feedback with a NUL")
