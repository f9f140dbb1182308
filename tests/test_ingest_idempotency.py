"""Idempotency and batches at ingest, on the in-memory bus and on real Kafka, with real PostgreSQL:
a repeat is a duplicate and published once, a reused id with another body is a 409, ids are scoped
by tenant, the state survives a restart, and a batch answers per item after one round of acks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from npsloop.loop import Loop
from npsloop_ingest.api.feedback import BatchResult
from npsloop_ingest.idempotency import IdempotencyStore
from npsloop_platform.access import Role
from npsloop_platform.bus import MemoryBus
from npsloop_platform.testing.helpers import bearer, eventually, feedback_body, read_all
from npsloop_schemas import Topics


def body(score: int = 5, **extra: Any) -> dict[str, Any]:
    return {k: v for k, v in feedback_body(score, **extra).items() if k != "tenant_id"}


async def published(loop: Loop) -> list[bytes]:
    return [m.value or b"" for m in await read_all(loop.bus, Topics.FEEDBACK_RECEIVED)]


async def test_a_repeat_is_a_duplicate_and_a_reused_id_with_another_body_is_409(
    loop: Loop, client: httpx.AsyncClient
) -> None:
    first = await client.post("/v1/feedback", json=body(3), headers={"Idempotency-Key": "till-7/receipt-1"})
    again = await client.post("/v1/feedback", json=body(3), headers={"Idempotency-Key": "till-7/receipt-1"})
    other = await client.post("/v1/feedback", json=body(4), headers={"Idempotency-Key": "till-7/receipt-1"})
    assert first.status_code == 202 and again.status_code == 200 and again.json()["status"] == "duplicate"
    assert first.json()["event_id"] == again.json()["event_id"]
    assert other.status_code == 409 and other.json()["event_id"] == first.json()["event_id"]
    eid = str(uuid.uuid4())
    assert (await client.post("/v1/feedback", json=body(9, event_id=eid))).status_code == 202
    assert (await client.post("/v1/feedback", json=body(8, event_id=eid))).status_code == 409
    assert len(await published(loop)) == 2  # one per accepted body, nothing for the repeats


async def test_event_ids_are_scoped_by_tenant(loop: Loop, client: httpx.AsyncClient) -> None:
    eid = str(uuid.uuid4())
    assert (await client.post("/v1/feedback", json=body(2, event_id=eid))).status_code == 202
    globex, _ = await loop.keys.create("globex", Role.SOURCE, None, actor="test")
    theirs = await client.post("/v1/feedback", json=body(9, event_id=eid), headers=bearer(globex))
    assert theirs.status_code == 202  # another tenant cannot block this id, nor be blocked by it
    assert len(await published(loop)) == 2


async def test_the_idempotency_state_survives_a_restart(database_url: str) -> None:
    eid = str(uuid.uuid4())
    statuses = []
    for _ in range(2):  # two lifetimes of ingest on the same database, as after a restart
        bus = MemoryBus()
        await bus.start()
        loop = Loop(bus, database_url, log_json=False)
        await loop.start()
        try:
            key, _ = await loop.keys.create("acme", Role.SOURCE, None, actor="test")
            app = loop.app(manage_bus=False, manage_components=False)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as http:
                r = await http.post("/v1/feedback", json=body(5, event_id=eid), headers=bearer(key))
                statuses.append((r.status_code, r.json()["status"]))
        finally:
            await loop.stop()
            await bus.stop()
    assert statuses == [(202, "accepted"), (200, "duplicate")]


class FlakyBus(MemoryBus):
    """Sends are refused while `down`, as when the broker stops."""

    down = False

    async def send(self, topic: str, value: bytes, *, key: Any = None, headers: Any = ()) -> Any:
        if self.down and topic == Topics.FEEDBACK_RECEIVED:
            fut = asyncio.get_running_loop().create_future()
            fut.set_exception(ConnectionError("broker stopped"))
            return fut
        return await super().send(topic, value, key=key, headers=headers)


async def test_a_failed_publish_releases_the_id_so_the_retry_publishes(database_url: str) -> None:
    bus = FlakyBus()
    await bus.start()
    loop = Loop(bus, database_url, log_json=False, publish_timeout_s=1.0)
    await loop.start()
    try:
        key, _ = await loop.keys.create("acme", Role.SOURCE, None, actor="test")
        app = loop.app(manage_bus=False, manage_components=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as http:
            items = [body(s, customer_id=f"c-{s}") for s in range(5)]
            bus.down = True
            down = await http.post("/v1/feedback:batch", json={"items": items}, headers=bearer(key))
            single = await http.post("/v1/feedback", json=body(7, event_id=str(uuid.uuid4())), headers=bearer(key))
            assert down.status_code == 503 and "Retry-After" in down.headers and single.status_code == 503
            bus.down = False
            retried = await http.post("/v1/feedback:batch", json={"items": items}, headers=bearer(key))
        assert retried.status_code == 200 and retried.json()["accepted"] == 5, retried.text
        assert len(bus.messages(Topics.FEEDBACK_RECEIVED)) == 5
    finally:
        await loop.stop()
        await bus.stop()


async def test_a_batch_answers_per_item_in_order(loop: Loop, client: httpx.AsyncClient) -> None:
    earlier = str(uuid.uuid4())
    assert (await client.post("/v1/feedback", json=body(6, event_id=earlier))).status_code == 202
    items: list[Any] = [
        body(10, customer_id="c-1"),
        body(11),  # out of range
        body(6, event_id=earlier),  # a repeat of what was accepted before
        body(1, event_id=earlier),  # the same id, another body
        {"score": 5},  # no channel
        body(9, store_id="x\x00y"),  # a NUL
        [1, 2],  # not an object
        body(0, customer_id="c-2"),
    ]
    answer = await client.post("/v1/feedback:batch", json={"items": items})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [
        "accepted", "rejected", "duplicate", "rejected", "rejected", "rejected", "rejected", "accepted",
    ]  # fmt: skip
    assert [r["index"] for r in results] == list(range(8))
    assert results[1]["errors"][0]["loc"] == ["items", 1, "score"]
    assert results[3]["errors"][0]["type"] == "conflict"
    assert results[4]["errors"][0]["loc"] == ["items", 4, "channel"]
    assert results[5]["errors"][0]["loc"] == ["items", 5, "store_id"]
    assert answer.json()["accepted"] == 2 and answer.json()["rejected"] == 5 and answer.json()["duplicates"] == 1
    assert len(await published(loop)) == 3  # the earlier one and the two accepted now
    # Written without the models, the answer is still exactly the documented BatchResult.
    assert BatchResult.model_validate(answer.json()).model_dump(mode="json") == answer.json()
    huge = await client.post("/v1/feedback:batch", json={"items": [body(10**30)]})  # past 64 bits, echoed
    assert huge.status_code == 200 and huge.json()["results"][0]["errors"][0]["input"] == 10**30

    too_many = await client.post("/v1/feedback:batch", json={"items": [body(5)] * 1001})
    assert too_many.status_code == 422 and too_many.json()["detail"][0]["loc"] == ["body", "items"]
    assert (await client.post("/v1/feedback:batch", json={"items": []})).status_code == 422
    assert (await client.post("/v1/feedback:batch", json=[body(5)])).status_code == 422


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[IdempotencyStore]:
    """Ingest's idempotency store, in a started one-process loop on the in-memory bus."""
    bus = MemoryBus()
    await bus.start()
    loop = Loop(bus, database_url, log_json=False)
    await loop.start()
    try:
        yield next(p.extras["idempotency"] for p in loop.parts if "idempotency" in p.extras)
    finally:
        await loop.stop()
        await bus.stop()


async def test_a_repeat_racing_the_published_mark_is_still_a_duplicate(store: IdempotencyStore) -> None:
    """Found by `make test` on real Kafka: a repeat whose claim statement read the row as 'pending'
    while the background mark of the first publish landed (and left the in-memory acked set) was
    taken for a crashed claim, answered "accepted" and published a second time."""
    from sqlalchemy import text

    from npsloop_ingest.idempotency import Claim, Item

    item = Item("acme", uuid.uuid4(), "h" * 64)
    assert await store.claim_now([item]) == [Claim.NEW]
    key = (item.tenant_id, str(item.event_id))
    store._acked.add(key)  # Kafka acknowledged it; the 'published' mark is on its way
    from npsloop_ingest import idempotency

    real_claim = idempotency._CLAIM

    class MarkLandsDuringTheStatement:
        """The claim reads 'pending'; meanwhile the mark commits and leaves `_acked`."""

        async def fetch(self, conn: Any, params: Any) -> Any:
            rows = await real_claim.fetch(conn, params)
            store._acked.discard(key)
            async with store.engine.connect() as other:
                await other.execute(
                    text("UPDATE ingest.accepted SET status = 'published' WHERE event_id = :e"),
                    {"e": item.event_id},
                )
            return rows

    idempotency._CLAIM = MarkLandsDuringTheStatement()  # type: ignore[assignment]
    try:
        assert await store.claim_now([item]) == [Claim.DUPLICATE]
    finally:
        idempotency._CLAIM = real_claim


async def test_a_claim_racing_another_statement_on_the_same_id_is_never_new(store: IdempotencyStore) -> None:
    """Two statements claiming one id at once (two replicas, or two rounds of one): the second
    waits for the first's insert, does nothing, and its snapshot does not show the row. It must
    not take the id for new (and publish a different body under it): the same body is a retry,
    another body a conflict."""
    from sqlalchemy import text

    from npsloop_ingest.idempotency import Claim, Item

    for hash_of_ours, expected in (("h" * 64, Claim.RETRY), ("x" * 64, Claim.CONFLICT)):
        event_id = uuid.uuid4()
        async with store.engine.connect() as other:
            other = await other.execution_options(isolation_level="READ COMMITTED")
            transaction = await other.begin()
            await other.execute(
                text(
                    "INSERT INTO ingest.accepted (tenant_id, event_id, body_hash, status) "
                    "VALUES ('acme', :e, :h, 'pending')"
                ),
                {"e": event_id, "h": "h" * 64},
            )
            ours = asyncio.create_task(store.claim_now([Item("acme", event_id, hash_of_ours)]))

            async def blocked() -> bool:  # ours waits for the uncommitted row's lock
                async with store.engine.connect() as probe:
                    waiting = await probe.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
                        )
                    )
                return bool(waiting)

            await eventually(blocked, timeout=10, what="the claim blocked on the other insert")
            assert not ours.done()
            await transaction.commit()
        assert await asyncio.wait_for(ours, 10) == [expected]


async def test_ingest_plans_its_claims_for_their_ids_every_time(database_url: str) -> None:
    """A generic plan counts an array of ids as 10 rows. PostgreSQL took one for the claim and the
    mark after five calls on a small table (a sequential scan and a hash join) and kept it while
    the table grew: at 60,000 ids PostgreSQL's CPU per paced post tripled. Ingest's own pool asks
    for custom plans; asyncpg's prepared statements show which kind each call got."""
    from npsloop_ingest.config import IngestSettings
    from npsloop_ingest.idempotency import Item
    from npsloop_ingest.main import build
    from npsloop_platform.db import Database, Migrations, driver_connection

    async def plans(db: Database) -> list[tuple[int, int]]:
        store = IdempotencyStore(db)
        for _ in range(8):
            items = [Item("acme", uuid.uuid4(), "h" * 64) for _ in range(3)]
            await store.claim_now(items)
            await store.settle_now(items, [])
        async with driver_connection(db.engine) as conn:
            rows = await conn.fetch(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE '%ingest.accepted%' AND statement NOT LIKE '%pg_prepared_statements%'"
            )
        return [(r["generic_plans"], r["custom_plans"]) for r in rows]

    parts = build(IngestSettings(database_url=database_url), MemoryBus())
    for migrations in (c for c in parts.components if isinstance(c, Migrations)):
        await migrations.start()
    ingest_db = next(c for c in parts.components if isinstance(c, Database))
    # The embedded default (`make run`) too: one process, and ingest's claims on a pool of its own.
    from npsloop.loop import Loop

    (embedded_db,) = [c for c in Loop(MemoryBus(), database_url).parts[0].components if isinstance(c, Database)]
    plain = Database(database_url, pool_size=1)
    try:
        for db in (ingest_db, embedded_db):
            ours = await plans(db)
            assert len(ours) == 2 and all(generic == 0 and custom == 8 for generic, custom in ours), ours
        assert any(generic > 0 for generic, _ in await plans(plain))  # what it guards against
    finally:
        await ingest_db.stop()
        await embedded_db.stop()
        await plain.stop()


async def test_marking_claims_published_is_a_hot_update(database_url: str) -> None:
    """A claim's mark updates only its status, and its page has room for that (migration 0003): the
    update stays in the page and writes no index entry. With full pages none of these were HOT."""
    from npsloop_ingest.config import IngestSettings
    from npsloop_ingest.idempotency import Item
    from npsloop_ingest.main import build
    from npsloop_platform.db import Database, Migrations, driver_connection

    parts = build(IngestSettings(database_url=database_url), MemoryBus())
    for migrations in (c for c in parts.components if isinstance(c, Migrations)):
        await migrations.start()
    db = next(c for c in parts.components if isinstance(c, Database))
    try:
        store = IdempotencyStore(db)
        async def updates() -> tuple[int, int]:
            """(updated rows, HOT updated rows) of ingest.accepted, as the statistics have them now."""
            async with driver_connection(db.engine) as conn:
                await conn.execute("SELECT pg_stat_force_next_flush()")
                row = await conn.fetchrow(
                    "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
                    " WHERE schemaname = 'ingest' AND relname = 'accepted'"
                )
            return row["n_tup_upd"], row["n_tup_hot_upd"]

        async with driver_connection(db.engine) as conn:
            await conn.execute("TRUNCATE ingest.accepted")  # new pages, as a table fills from now on
        updated_before, hot_before = await updates()
        for _ in range(3):
            items = [Item("acme", uuid.uuid4(), "h" * 64, f"acme:c-{i}", "berlin-1") for i in range(1000)]
            await store.claim_now(items)
            await store.settle_now(items, [])
        updated_after, hot_after = await updates()
        updated, hot = updated_after - updated_before, hot_after - hot_before
        assert updated == 3000 and hot >= 0.95 * updated, (updated, hot)
    finally:
        await db.stop()
