"""CRM webhooks against real loopback receivers, on the memory bus and on real Kafka: Standard
Webhooks signatures verified by the `standardwebhooks` package (also across a secret rotation),
a 500 then success delivered once, no retry on 4xx but 429 after its Retry-After, dead letters
replayed, failing endpoints disabled, and prod mode's URL rules (SSRF)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import make_url
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from npsloop_notifier.webhooks import UrlRefused, check_url
from npsloop_platform.bus import Bus, MemoryBus
from npsloop_platform.testing.helpers import eventually
from npsloop_schemas import derive_id

from .conftest import Receiver, Service, body_of, case_opened, started_service


async def subscribe(service: Service, receiver: Receiver, event_types: list[str] | None = None) -> dict[str, str]:
    r = await service.http.post(
        "/v1/webhook-subscriptions", json={"url": receiver.url, "event_types": event_types or ["case.opened"]}
    )
    assert r.status_code == 201, r.text
    created: dict[str, str] = r.json()
    assert created["secret"].startswith("whsec_")
    return created


async def test_a_500_then_success_is_delivered_once_and_verifies(service: Service, receiver: Receiver) -> None:
    sub = await subscribe(service, receiver, ["case.opened", "case.closed"])
    receiver.script = [(500, {}, 0.0)]
    event = await service.publish_case_opened()

    async def delivered() -> bool:
        return len(receiver.accepted()) == 1

    await eventually(delivered, timeout=30, what="the webhook")
    (payload,) = receiver.verified(sub["secret"])  # the standardwebhooks package verifies the signature
    assert payload["event_id"] == str(event.event_id) and payload["event_type"] == "case.opened"
    delivery_id = str(derive_id(f"webhook:{sub['id']}", event.event_id))
    assert [r.headers["webhook-id"] for r in receiver.received] == [delivery_id, delivery_id]  # same id on retry
    log = (await service.http.get(f"/v1/deliveries/{delivery_id}")).json()
    assert log["status"] == "sent" and [(a["attempt"], a["status_code"]) for a in log["log"]] == [(1, 500), (2, 204)]
    assert len(service.sleeps.waits) == 1  # one backoff, injected: no real waiting

    # The same event again (a redelivery): never posted twice.
    await service.bus.publish("case.events.v1", body_of_event(event), key="acme:c-1")
    other = await service.publish_case_opened(customer="acme:c-2")
    await eventually(lambda: _count(receiver, 2), timeout=30, what="the second event")
    assert [body_of(r)["event_id"] for r in receiver.accepted()] == [str(event.event_id), str(other.event_id)]


def body_of_event(event: object) -> bytes:
    from npsloop_schemas import serialize_event

    return serialize_event(event)  # type: ignore[arg-type]


async def _count(receiver: Receiver, n: int) -> bool:
    return len(receiver.accepted()) >= n


async def test_signatures_verify_during_and_after_a_secret_rotation(service: Service, receiver: Receiver) -> None:
    sub = await subscribe(service, receiver)
    old = sub["secret"]
    await service.publish_case_opened()
    await eventually(lambda: _count(receiver, 1), timeout=30, what="first webhook")
    rotated = (
        await service.http.post(f"/v1/webhook-subscriptions/{sub['id']}/rotate-secret", json={"overlap_s": 3600})
    ).json()
    new = rotated["secret"]
    assert new != old and new.startswith("whsec_")
    await service.publish_case_opened(customer="acme:c-2")
    await eventually(lambda: _count(receiver, 2), timeout=30, what="webhook during the overlap")
    during = receiver.accepted()[1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2  # both secrets sign
    Webhook(old).verify(during.body, during.headers)
    Webhook(new).verify(during.body, during.headers)

    service.clock.advance(hours=2)  # the overlap is over
    await service.publish_case_opened(customer="acme:c-3")
    await eventually(lambda: _count(receiver, 3), timeout=30, what="webhook after the overlap")
    after = receiver.accepted()[2]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(old).verify(after.body, after.headers)
    tampered = after.body.replace(b"acme:c-3", b"acme:c-4")
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(tampered, after.headers)


async def test_no_retry_on_4xx_but_429_and_408_after_their_retry_after(service: Service, receiver: Receiver) -> None:
    await subscribe(service, receiver)
    receiver.script = [(429, {"Retry-After": "7"}, 0.0), (408, {}, 0.0), (200, {}, 0.0), (400, {}, 0.0)]
    await service.publish_case_opened(customer="acme:c-1")
    await eventually(lambda: _count(receiver, 1), timeout=30, what="the delivery after 429 and 408")
    assert service.sleeps.waits[0] == 7.0  # Retry-After honoured (through the injected sleep)
    assert len(receiver.received) == 3
    await service.publish_case_opened(customer="acme:c-2")

    async def refused() -> bool:
        rows = (await service.http.get("/v1/deliveries", params={"status": "failed"})).json()["deliveries"]
        return len(rows) == 1

    await eventually(refused, timeout=30, what="the 400 recorded as failed")
    assert len(receiver.received) == 4  # a 400 is not retried
    failed = (await service.http.get("/v1/deliveries", params={"status": "failed"})).json()["deliveries"][0]
    assert failed["attempts"] == 1 and "HTTP 400" in failed["last_error"]


async def test_a_dead_lettered_webhook_is_replayed_one_and_all_since(service: Service, receiver: Receiver) -> None:
    sub = await subscribe(service, receiver)
    receiver.script = [(503, {}, 0.0)] * 8  # two deliveries x four attempts
    first = await service.publish_case_opened(customer="acme:c-1")
    second = await service.publish_case_opened(customer="acme:c-2")
    failed_url = f"/v1/webhook-subscriptions/{sub['id']}/deliveries"

    async def both_failed() -> bool:
        return len((await service.http.get(failed_url, params={"status": "failed"})).json()["deliveries"]) == 2

    await eventually(both_failed, timeout=30, what="two dead-lettered deliveries")
    one = str(derive_id(f"webhook:{sub['id']}", first.event_id))
    detail = (await service.http.get(f"/v1/deliveries/{one}")).json()
    assert detail["attempts"] == 4 and "HTTP 503" in detail["last_error"] and len(detail["log"]) == 4
    assert not receiver.accepted()

    replayed = await service.http.post(f"/v1/deliveries/{one}/replay")
    assert replayed.status_code == 200 and replayed.json()["status"] == "sent", replayed.text
    assert replayed.json()["attempts"] == 5 and replayed.json()["log"][-1]["attempt"] == 5
    assert receiver.accepted()[0].headers["webhook-id"] == one  # the same id: receivers dedupe
    again = await service.http.post(f"/v1/deliveries/{one}/replay")
    assert again.status_code == 409  # sent now: nothing to replay

    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    bulk = await service.http.post(f"/v1/webhook-subscriptions/{sub['id']}/replay", json={"since": since})
    assert bulk.json()["replayed"] == 1 and bulk.json()["sent"] == 1
    assert sorted(body_of(r)["event_id"] for r in receiver.accepted()) == sorted(
        [str(first.event_id), str(second.event_id)]
    )


async def test_a_failing_endpoint_is_disabled_after_the_threshold(
    bus: Bus, database_url: str, receiver: Receiver
) -> None:
    service, parts = await started_service(bus, database_url, webhook_disable_after=2, max_attempts=1)
    try:
        sub = await subscribe(service, receiver)
        receiver.script = [(500, {}, 0.0)] * 2
        for n in range(2):
            await service.publish_case_opened(customer=f"acme:c-{n}")

        async def disabled() -> bool:
            return (await service.http.get(f"/v1/webhook-subscriptions/{sub['id']}")).json()["status"] == "disabled"

        await eventually(disabled, timeout=30, what="the subscription disabled")
        seen = (await service.http.get(f"/v1/webhook-subscriptions/{sub['id']}")).json()
        assert "2 failed deliveries in a row" in seen["disabled_reason"] and seen["consecutive_failures"] == 2
        await asyncio.sleep(0.05)  # past the subscription cache
        await service.publish_case_opened(customer="acme:c-9")

        async def three_failed() -> bool:
            rows = (await service.http.get("/v1/deliveries", params={"status": "failed"})).json()["deliveries"]
            return len(rows) == 3

        await eventually(three_failed, timeout=30, what="the third delivery recorded, not sent")
        assert len(receiver.received) == 2  # a disabled endpoint gets no calls
        rows = (await service.http.get("/v1/deliveries", params={"status": "failed"})).json()["deliveries"]
        assert rows[0]["last_error"].startswith("subscription disabled")
        enabled = (await service.http.post(f"/v1/webhook-subscriptions/{sub['id']}/enable")).json()
        assert enabled["status"] == "active" and enabled["consecutive_failures"] == 0
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        bulk = (await service.http.post(f"/v1/webhook-subscriptions/{sub['id']}/replay", json={"since": since})).json()
        assert bulk["replayed"] == 3 and bulk["sent"] == 3 and len(receiver.accepted()) == 3
    finally:
        from .conftest import stop_service

        await stop_service(service, parts)


async def test_a_receiver_that_never_answers_fails_with_a_timeout(database_url: str, receiver: Receiver) -> None:
    bus = MemoryBus()
    await bus.start()
    service, parts = await started_service(bus, database_url, webhook_timeout_s=0.2, max_attempts=2)
    try:
        await subscribe(service, receiver)
        receiver.script = [(200, {}, 1.0), (200, {}, 1.0)]
        await service.publish_case_opened()

        async def failed() -> bool:
            rows = (await service.http.get("/v1/deliveries", params={"status": "failed"})).json()["deliveries"]
            return len(rows) == 1

        await eventually(failed, timeout=30, what="the timeout recorded")
        row = (await service.http.get("/v1/deliveries", params={"status": "failed"})).json()["deliveries"][0]
        assert "timeout" in row["last_error"] and row["attempts"] == 2
    finally:
        from .conftest import stop_service

        await stop_service(service, parts)
        await bus.stop()


async def test_subscriptions_are_listed_deleted_and_tenant_scoped(service: Service, receiver: Receiver) -> None:
    sub = await subscribe(service, receiver, ["*"])
    listed = (await service.http.get("/v1/webhook-subscriptions")).json()["subscriptions"]
    assert [s["id"] for s in listed] == [sub["id"]] and "secret" not in listed[0] and sub["secret"] not in str(listed)
    from npsloop_platform.access import Role
    from npsloop_platform.testing.helpers import bearer

    other, _ = await service.keys.create("globex", Role.ADMIN, None, actor="test")
    assert (await service.http.get(f"/v1/webhook-subscriptions/{sub['id']}", headers=bearer(other))).status_code == 404
    assert (
        await service.http.delete(f"/v1/webhook-subscriptions/{sub['id']}", headers=bearer(other))
    ).status_code == 404
    manager, _ = await service.keys.create("acme", Role.MANAGER, None, actor="test")
    assert (await service.http.get("/v1/webhook-subscriptions", headers=bearer(manager))).status_code == 403
    bad = await service.http.post("/v1/webhook-subscriptions", json={"url": receiver.url, "event_types": ["case.nope"]})
    assert bad.status_code == 422 and "case.nope" in bad.text
    event = case_opened(tenant="globex", customer="globex:c-1")  # another tenant's event: not ours to send
    from npsloop_schemas import serialize_event

    await service.bus.publish("case.events.v1", serialize_event(event), key="globex:c-1")
    await service.publish_case_opened()
    await eventually(lambda: _count(receiver, 1), timeout=30, what="acme's event")
    await asyncio.sleep(0.2)
    assert [body_of(r)["tenant_id"] for r in receiver.accepted()] == ["acme"]
    assert (await service.http.delete(f"/v1/webhook-subscriptions/{sub['id']}")).status_code == 204
    assert (await service.http.get("/v1/webhook-subscriptions")).json()["subscriptions"] == []


async def test_prod_mode_refuses_plain_http_and_private_addresses() -> None:
    assert await check_url("http://127.0.0.1:9000/x", "dev") == "http://127.0.0.1:9000/x"
    for url, why in [
        ("http://crm.example.com/hook", "only https"),
        ("https://127.0.0.1/hook", "private or loopback"),
        ("https://localhost:8443/hook", "private or loopback"),
        ("https://10.1.2.3/hook", "private or loopback"),
        ("https://[::1]/hook", "private or loopback"),
        ("https://169.254.169.254/latest/meta-data", "private or loopback"),
        ("https://user:pw@crm.example.com/", "credentials"),
        ("ftp://crm.example.com/", "not an http"),
    ]:
        with pytest.raises(UrlRefused, match=why):
            await check_url(url, "prod")
    assert await check_url("https://8.8.8.8/hook", "prod") == "https://8.8.8.8/hook"


async def test_prod_mode_api_refuses_a_loopback_url(database_url: str) -> None:
    bus = MemoryBus()
    await bus.start()
    # prod refuses an empty password; the test server trusts any
    url = make_url(database_url).set(password="not-a-placeholder").render_as_string(hide_password=False)
    service, parts = await started_service(bus, url, mode="prod", link_secret="s" * 32)
    try:
        for url in ("http://127.0.0.1:9000/hook", "https://127.0.0.1:9000/hook"):
            r = await service.http.post("/v1/webhook-subscriptions", json={"url": url, "event_types": ["case.opened"]})
            assert r.status_code == 422 and "url refused" in r.text, r.text
    finally:
        from .conftest import stop_service

        await stop_service(service, parts)
        await bus.stop()
