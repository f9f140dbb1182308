"""The customer pages in a real browser (Debian's chromium, driven by Playwright), against
`npsloop run` as its own process: the unsubscribe link of a mail in the maildir, and the passive's
reply page. Screenshots go to .cache/screenshots/."""

from __future__ import annotations

import mailbox
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest

from npsloop_notifier.links import REPLY, Links
from npsloop_platform.testing.helpers import dev_keys, npsloop_run

REPO = Path(__file__).resolve().parents[3]
SHOTS = REPO / ".cache" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_unsubscribe_and_reply_pages_in_a_browser(database_url: str) -> None:
    assert CHROMIUM, "Debian's chromium is missing: `make browser` installs it (make test does)"
    data = Path(tempfile.mkdtemp(prefix="npsloop-pages-"))
    try:
        with npsloop_run(database_url, data) as base:
            browse(base, data)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def browse(base: str, data: Path) -> None:
    from playwright.sync_api import sync_playwright

    keys = dev_keys(data)
    body = {"store_id": "berlin-1", "channel": "pos", "score": 10, "customer_id": "c-7",
            "contact": {"name": "Ann", "email": "ann@example.com"}}  # fmt: skip
    auth = {"Authorization": f"Bearer {keys['NPSLOOP_SOURCE_KEY']}"}
    assert httpx.post(f"{base}/v1/feedback", json=body, headers=auth).status_code == 202
    deadline = time.monotonic() + 30
    while not list(mailbox.Maildir(data / "mail", create=False)):
        assert time.monotonic() < deadline, "no mail in the maildir"
        time.sleep(0.2)
    (mail,) = list(mailbox.Maildir(data / "mail", create=False))
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = mail["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith(f"{base}/v1/unsubscribe?token=")  # under the public base URL

    links = Links(base, (data / "link-secret").read_text().strip().encode(), 30)
    reply = links.url("/v1/reply", links.token(REPLY, uuid.uuid4(), "acme", "acme:c-7", uuid.uuid4()))

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(unsubscribe)
            assert "Stop receiving these emails?" in page.inner_text("body")
            page.screenshot(path=str(SHOTS / "unsubscribe.png"))
            page.click("button")
            page.wait_for_selector("text=You are unsubscribed")
            page.screenshot(path=str(SHOTS / "unsubscribed.png"))
            admin = {"Authorization": f"Bearer {keys['NPSLOOP_ADMIN_KEY']}"}
            listed = httpx.get(f"{base}/v1/suppressions", headers=admin).json()["suppressions"]
            assert [s["reason"] for s in listed] == ["unsubscribed"]

            page.goto(reply + "&text=Faster%20service")
            assert page.input_value("textarea") == "Faster service"
            page.fill("textarea", "Faster service at the till, please")
            page.screenshot(path=str(SHOTS / "reply.png"))
            page.click("button")
            page.wait_for_selector("text=Thank you, we read every answer.")
            page.goto(unsubscribe[:-6] + "AAAAAA")  # a changed token
            assert "This link does not work" in page.inner_text("body")
        finally:
            browser.close()
