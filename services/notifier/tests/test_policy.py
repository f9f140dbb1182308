"""The contact policy on real PostgreSQL with an injected clock: a frequency cap across kinds,
channels and replicas, exemptions, opt-outs and the suppression list, quiet hours for calls in
the store's time zone; every skip recorded and reported as `suppressed` with its reason."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from npsloop_notifier.handlers import Notifier
from npsloop_notifier.repository import SqlDeliveryStore
from npsloop_platform.bus import MemoryBus
from npsloop_platform.testing.servers import HttpSink, SmtpSink
from npsloop_schemas import NotificationKind, NotificationRequestedV1

from .conftest import Service, notification, started_service, stop_service

K = NotificationKind


async def send(notifier: Notifier, *requests: NotificationRequestedV1) -> list[tuple[str, str | None]]:
    results = await notifier.deliver_batch([(r, r.payload.customer_key) for r in requests])
    return [(r.report.payload.status, r.report.payload.reason) for r in results if r.report]


async def test_one_message_per_customer_in_seven_days_across_kinds_and_channels(
    mem_service: Service, smtp_server: SmtpSink, http_sink: HttpSink
) -> None:
    svc = mem_service
    svc.clock.now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # daytime in Berlin: calls allowed
    (first,) = await send(svc.notifier, notification(K.THANK_YOU_EMAIL, "acme:c-1"))
    assert first == ("sent", None)
    svc.clock.advance(days=3)
    nurture, review = await send(
        svc.notifier, notification(K.NURTURE_EMAIL, "acme:c-1"), notification(K.REVIEW_INVITATION, "acme:c-1")
    )
    assert nurture[0] == "suppressed" and "frequency cap: at most one message per customer in 7 days" in str(nurture[1])
    assert "(last one at 2026-12-01 10:00 UTC)" in str(nurture[1]) and review[0] == "suppressed"
    ack, call = await send(
        svc.notifier, notification(K.ACKNOWLEDGEMENT_EMAIL, "acme:c-1", score=2), notification(K.CALL_TASK, "acme:c-1")
    )
    assert ack == ("sent", None) and call == ("sent", None)  # a detractor's acknowledgement and call are exempt
    svc.clock.advance(days=3)
    (still,) = await send(svc.notifier, notification(K.THANK_YOU_EMAIL, "acme:c-1"))
    assert still[0] == "suppressed"  # the exempt acknowledgement counted as a contact (day 3)
    svc.clock.advance(days=5)
    (later,) = await send(svc.notifier, notification(K.THANK_YOU_EMAIL, "acme:c-1"))
    assert later == ("sent", None)
    assert len(smtp_server.messages) == 3 and len(http_sink.requests) == 1
    skipped = (await svc.http.get("/v1/deliveries", params={"status": "suppressed"})).json()["deliveries"]
    assert len(skipped) == 3 and all("frequency cap" in d["last_error"] for d in skipped)  # recorded, with reason


async def test_the_cap_holds_across_replicas_and_a_failed_send_gives_its_slot_back(
    mem_service: Service, smtp_server: SmtpSink
) -> None:
    svc = mem_service
    db = svc.api.log.engine  # the same database, through a second store: another replica
    other = Notifier(SqlDeliveryStore(type("Db", (), {"engine": db})()), svc.notifier.channels, svc.settings,
                     contact=svc.notifier.contact, clock=svc.clock)  # fmt: skip
    for n in range(5):
        a, b = notification(K.THANK_YOU_EMAIL, f"acme:r-{n}"), notification(K.NURTURE_EMAIL, f"acme:r-{n}")
        results = await asyncio.gather(send(svc.notifier, a), send(other, b))
        assert sorted(s for ((s, _),) in results) == ["sent", "suppressed"], results
    assert len(smtp_server.messages) == 5

    (failed,) = await send(svc.notifier, notification(K.THANK_YOU_EMAIL, "acme:f-1", email=None))
    assert failed == ("failed", "no email address for this customer")
    (next_one,) = await send(svc.notifier, notification(K.NURTURE_EMAIL, "acme:f-1"))
    assert next_one == ("sent", None)  # the failed message did not use up the week


async def test_opt_outs_and_the_suppression_list(
    mem_service: Service, smtp_server: SmtpSink, http_sink: HttpSink
) -> None:
    svc = mem_service
    svc.clock.now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    r = await svc.http.post("/v1/suppressions", json={"kind": "email", "value": " Ann@Example.com "})
    assert r.status_code == 201 and r.json()["hint"] == "a***@example.com"
    mail, call = await send(
        svc.notifier,
        notification(K.ACKNOWLEDGEMENT_EMAIL, "acme:c-1", email="ann@example.com", score=1),
        notification(K.CALL_TASK, "acme:c-1"),
    )
    assert mail == ("suppressed", "suppression list: email a***@example.com: admin")
    assert call == ("sent", None)  # an email opt-out does not stop the call
    await svc.http.post("/v1/suppressions", json={"kind": "customer", "value": "acme:c-2", "reason": "gdpr request"})
    (blocked,) = await send(svc.notifier, notification(K.CALL_TASK, "acme:c-2"))
    assert blocked[0] == "suppressed" and "gdpr request" in str(blocked[1])
    entries = (await svc.http.get("/v1/suppressions")).json()["suppressions"]
    assert len(entries) == 2
    email_entry = next(e for e in entries if e["kind"] == "email")
    assert (await svc.http.delete(f"/v1/suppressions/{email_entry['id']}")).status_code == 204
    (allowed,) = await send(svc.notifier, notification(K.ACKNOWLEDGEMENT_EMAIL, "acme:c-9", email="ann@example.com"))
    assert allowed == ("sent", None)
    bad = await svc.http.post("/v1/suppressions", json={"kind": "email", "value": "not-an-address"})
    assert bad.status_code == 422
    assert len(smtp_server.messages) == 1 and len(http_sink.requests) == 1


async def test_quiet_hours_for_calls_in_the_stores_time_zone(database_url: str, http_sink: HttpSink) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stores = Path(tmp) / "stores.toml"
        stores.write_text(
            '[stores."acme/berlin-1"]\ntime_zone = "Europe/Berlin"\n[stores."acme/nyc-1"]\ntime_zone = "America/New_York"\n'
        )
        bus = MemoryBus()
        await bus.start()
        svc, parts = await started_service(bus, database_url, stores_file=str(stores), call_task_url=http_sink.url)
        try:
            svc.clock.now = datetime(2026, 12, 1, 21, 30, tzinfo=UTC)  # 22:30 in Berlin, 16:30 in New York
            berlin, nyc = await send(
                svc.notifier,
                notification(K.CALL_TASK, "acme:c-1", store_id="berlin-1"),
                notification(K.CALL_TASK, "acme:c-2", store_id="nyc-1"),
            )
            assert berlin[0] == "suppressed" and "quiet hours: 22:30 in Europe/Berlin" in str(berlin[1])
            assert nyc == ("sent", None)
            assert [r["json"]["store_id"] for r in http_sink.requests] == ["nyc-1"]
        finally:
            await stop_service(svc, parts)
            await bus.stop()
