"""Email against a real aiosmtpd server: SMTP down for a while then back (all delivered, none
twice), templates per kind and locale, the unsubscribe link and the RFC 8058 one-click POST,
the passive's one-click reply as a feedback.updated, and bad input failed with a reason."""

from __future__ import annotations

import re
import tempfile
import uuid
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from npsloop_notifier.config import NotifierSettings
from npsloop_platform.bus import Bus, MemoryBus
from npsloop_platform.testing.helpers import eventually, read_topic
from npsloop_platform.testing.servers import SmtpServer, SmtpSink
from npsloop_schemas import NotificationKind, Topics, derive_id, parse_event

from .conftest import Service, notification, started_service, stop_service


def parts_of(mail: Message) -> tuple[str, str]:
    text, html = (p.get_payload(decode=True).decode() for p in mail.get_payload())  # type: ignore[union-attr]
    return text, html


def local(url: str) -> str:
    """A link in a mail (under the public base URL) as a path for the test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_smtp_down_for_a_while_then_back_all_delivered_none_twice(bus: Bus, database_url: str) -> None:
    smtp = SmtpServer()  # not started yet: connections are refused
    service, parts = await started_service(
        bus, database_url, smtp_host=smtp.sink.host, smtp_port=smtp.sink.port, max_attempts=8
    )
    try:
        service.sleeps.hook = lambda n: smtp.start() if n == 3 else None  # SMTP comes back during the backoff
        requests = [notification(customer=f"acme:c-{i}", email=f"c{i}@example.com") for i in range(5)]
        for req in requests:
            await service.request(req)

        async def all_sent() -> bool:
            return len(smtp.sink.messages) >= 5

        await eventually(all_sent, timeout=60, what="five mails after the outage")
        for req in requests:  # a redelivery of every request sends nothing again
            await service.request(req)
        statuses = await read_topic(bus, Topics.NOTIFICATION_STATUS, 10, timeout=60)
        events = [parse_event(m.value or b"") for m in statuses]
        assert {e.payload.status for e in events} == {"sent"}  # type: ignore[attr-defined]
        ids = sorted(m["X-Npsloop-Delivery-Id"] for m in smtp.sink.messages)
        assert ids == sorted(str(r.payload.delivery_id) for r in requests)  # each once
        assert len(service.sleeps.waits) >= 3
    finally:
        await stop_service(service, parts)
        smtp.stop()


async def test_templates_per_kind_and_locale_escaped_and_branded(database_url: str, smtp_server: SmtpSink) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        branding = Path(tmp) / "branding.toml"
        branding.write_text(
            '[tenants.acme]\nname = "Acme Markets"\nsender = "Acme <hello@acme.example>"\nprimary_color = "#c00000"\n'
            'footer = "Acme Markets GmbH, Berlin"\n'
        )
        bus = MemoryBus()
        await bus.start()
        service, parts = await started_service(
            bus, database_url, smtp_host=smtp_server.host, smtp_port=smtp_server.port, branding_file=branding
        )
        try:
            sent = [
                notification(NotificationKind.ACKNOWLEDGEMENT_EMAIL, "acme:c-1", score=2),
                notification(NotificationKind.THANK_YOU_EMAIL, "acme:c-2", locale="de-AT"),
                notification(NotificationKind.NURTURE_EMAIL, "acme:c-3", score=8),
                notification(NotificationKind.REVIEW_INVITATION, "acme:c-4", score=10, locale="fr-FR"),
            ]
            results = await service.notifier.deliver_batch([(r, r.payload.customer_key) for r in sent])
            assert [r.report.payload.status for r in results] == ["sent"] * 4  # type: ignore[union-attr]
            by_kind = {m["X-Npsloop-Kind"]: m for m in smtp_server.messages}
            ack = by_kind["acknowledgement_email"]
            text, html = parts_of(ack)
            assert ack["Subject"] == "We read your feedback" and ack["From"] == "Acme <hello@acme.example>"
            assert "Long wait &lt;b&gt;at&lt;/b&gt; the till" in html and "<b>at</b>" not in html  # autoescaped
            assert '"Long wait <b>at</b> the till"' in text  # text is not HTML
            assert "#c00000" in html and "Acme Markets GmbH, Berlin" in text and "Acme Markets" in html
            german = by_kind["thank_you_email"]
            assert "Danke" in str(german["Subject"]) or "=?utf-8?" in str(german["Subject"])
            assert "vielen Dank" in parts_of(german)[0] and "Abmelden" in parts_of(german)[1]
            assert "What would make it a 10?" in str(by_kind["nurture_email"]["Subject"])
            assert "Would you share" in str(by_kind["review_invitation"]["Subject"])  # fr falls back to en
            for mail in smtp_server.messages:
                assert re.fullmatch(r"<http://127\.0\.0\.1:8000/v1/unsubscribe\?token=[^>]+>", mail["List-Unsubscribe"])
                assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        finally:
            await stop_service(service, parts)
            await bus.stop()


async def test_unsubscribe_through_the_link_and_through_the_rfc8058_post(
    mem_service: Service, smtp_server: SmtpSink
) -> None:
    svc = mem_service
    ann, bob = (
        notification(customer="acme:ann", email="ann@example.com"),
        notification(customer="acme:bob", email="bob@example.com"),
    )
    await svc.notifier.deliver_batch([(ann, "acme:ann"), (bob, "acme:bob")])
    mails = {m["To"]: m for m in smtp_server.messages}

    # RFC 8058: the mail client POSTs List-Unsubscribe=One-Click to the List-Unsubscribe URL.
    one_click = local(mails["ann@example.com"]["List-Unsubscribe"].strip("<>"))
    r = await svc.http.post(
        one_click, content="List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 200 and "unsubscribed" in r.text

    # The link in the mail: GET shows a button (scanners open links), its form POST unsubscribes.
    link = re.search(r"Unsubscribe: (\S+)", parts_of(mails["bob@example.com"])[0]).group(1)  # type: ignore[union-attr]
    page = await svc.http.get(local(link))
    assert page.status_code == 200 and "<form" in page.text
    action = re.search(r'action="([^"]+)"', page.text).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    listed = (await svc.http.get("/v1/suppressions")).json()["suppressions"]
    assert len(listed) == 1  # a GET alone unsubscribed nobody
    done = await svc.http.post(action, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "unsubscribed" in done.text

    listed = (await svc.http.get("/v1/suppressions")).json()["suppressions"]
    assert {s["reason"] for s in listed} == {"unsubscribed"} and len(listed) == 2
    assert "ann@example.com" not in str(listed)  # hashed, never the address
    svc.clock.advance(days=30)  # past the frequency cap: only the opt-out holds them back
    again = [
        notification(customer="acme:ann-2", email="ANN@example.com"),
        notification(customer="acme:bob", email="bob@example.com"),
    ]
    results = await svc.notifier.deliver_batch([(r, r.payload.customer_key) for r in again])
    for res in results:
        assert res.report.payload.status == "suppressed" and "unsubscribed" in res.report.payload.reason  # type: ignore[union-attr, operator]
    assert len(smtp_server.messages) == 2

    forged = one_click[:-3] + ("AAA" if not one_click.endswith("AAA") else "BBB")
    assert (await svc.http.post(forged)).status_code == 400
    svc.clock.advance(days=61)  # links expire
    expired = await svc.http.get(one_click)
    assert expired.status_code == 400 and "expired" in expired.text


async def test_the_passives_one_click_reply_comes_back_as_feedback_updated(
    mem_service: Service, smtp_server: SmtpSink
) -> None:
    svc = mem_service
    req = notification(NotificationKind.NURTURE_EMAIL, "acme:pat", score=8)
    await svc.notifier.deliver_batch([(req, "acme:pat")])
    (mail,) = smtp_server.messages
    text, html = parts_of(mail)
    assert "/v1/reply?token=" in text and "text=Faster%20service" in html
    choice = re.search(r'href="(http://127\.0\.0\.1:8000/v1/reply\?[^"]+text=Faster%20service)"', html).group(1)  # type: ignore[union-attr]
    page = await svc.http.get(local(choice.replace("&amp;", "&")))
    assert page.status_code == 200 and "Faster service</textarea>" in page.text
    action = re.search(r'action="([^"]+)"', page.text).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    sent = await svc.http.post(action, data={"comment": "Faster service at the till"})
    assert sent.status_code == 200 and "Thank you" in sent.text
    await svc.http.post(action, data={"comment": "Faster service at the till"})  # a double click
    messages = await read_topic(svc.bus, Topics.FEEDBACK_RECEIVED, 2, timeout=10)
    events = [parse_event(m.value or b"") for m in messages]
    assert {m.key for m in messages} == {b"acme:pat"}  # the original answer's key: ordered after it
    update = events[0]
    assert update.event_type == "feedback.updated" and update.payload.fields == ["comment"]  # type: ignore[attr-defined]
    assert update.payload.feedback_event_id == req.payload.feedback_event_id  # type: ignore[attr-defined]
    assert update.event_id == derive_id("reply:Faster service at the till", req.payload.delivery_id)
    assert events[1].event_id == update.event_id  # the double click dedupes downstream
    assert (await svc.http.post(action, data={"comment": "  "})).status_code == 422
    unsubscribe_token = mail["List-Unsubscribe"].strip("<>").split("token=")[1]
    assert (await svc.http.post(f"/v1/reply?token={unsubscribe_token}", data={"comment": "x"})).status_code == 400


async def test_bad_input_is_failed_with_a_reason_and_the_consumer_goes_on(
    database_url: str, smtp_server: SmtpSink
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "thank_you_email.en.txt").write_text("Hello {{ no_such_field.name }}\n")
        bus = MemoryBus()
        await bus.start()
        service, parts = await started_service(
            bus, database_url, smtp_host=smtp_server.host, smtp_port=smtp_server.port, templates_dir=Path(tmp)
        )
        try:
            broken = notification(NotificationKind.THANK_YOU_EMAIL, "acme:c-1")
            no_email = notification(NotificationKind.ACKNOWLEDGEMENT_EMAIL, "acme:c-2", email=None, score=1)
            fine = notification(NotificationKind.ACKNOWLEDGEMENT_EMAIL, "acme:c-3", score=1)
            # valid for the schema, but no SMTP command line can carry it as it is
            smuggled = notification(NotificationKind.ACKNOWLEDGEMENT_EMAIL, "acme:c-4", email="a<b>@x.co", score=1)
            for req in (broken, no_email, fine, smuggled):
                await service.request(req)
            statuses = await read_topic(bus, Topics.NOTIFICATION_STATUS, 4, timeout=30)
            by_id: dict[uuid.UUID, Any] = {
                e.payload.delivery_id: e.payload for e in map(parse_event, (m.value or b"" for m in statuses))
            }  # type: ignore[attr-defined]
            assert by_id[broken.payload.delivery_id].status == "failed"
            assert "template error in thank_you_email.en" in by_id[broken.payload.delivery_id].reason
            assert by_id[no_email.payload.delivery_id].reason == "no email address for this customer"
            assert by_id[fine.payload.delivery_id].status == "sent" and len(smtp_server.messages) == 1
            assert by_id[smuggled.payload.delivery_id].status == "failed"
            assert "address cannot be sent over SMTP" in by_id[smuggled.payload.delivery_id].reason
            dead = await read_topic(bus, Topics.dlq(Topics.NOTIFICATION_REQUESTED, "notifier"), 3, timeout=30)
            assert len(dead) == 3
        finally:
            await stop_service(service, parts)
            await bus.stop()


def test_prod_mode_needs_a_link_secret() -> None:
    import pytest

    settings = NotifierSettings(database_url="postgresql://u@h/db", mode="prod")
    with pytest.raises(ValueError, match="NPSLOOP_LINK_SECRET"):
        settings.secret_for_links()
