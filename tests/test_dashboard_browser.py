"""The dashboard in a real browser (Debian's chromium, driven by Playwright): `npsloop run` as its
own process after a seeded quarter (the demo's), the login form, the signed session, the charts,
a filter that changes the figures, a posted `<script>` shown as text, CSV export, a bad week, and
a forged cookie sent back to the form. Screenshots go to .cache/screenshots/."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from npsloop.demo import seed, write_stores
from npsloop_platform.testing.helpers import dev_keys, npsloop_run

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / ".cache" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCRIPT = "<script>window.__pwned = 1</script><b>bold?</b> Long wait"


@pytest.mark.slow
def test_the_dashboard_after_a_seeded_quarter(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert CHROMIUM, "Debian's chromium is missing: `make browser` installs it (make test does)"

    data = Path(tempfile.mkdtemp(prefix="npsloop-browser-"))
    try:
        monkeypatch.setenv("NPSLOOP_STORES_FILE", str(write_stores(data)))
        assert asyncio.run(seed(database_url, data)) > 3000
        with npsloop_run(database_url, data) as base:
            browse(base, data)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def browse(base: str, data: Path) -> None:
    from playwright.sync_api import sync_playwright

    keys = dev_keys(data)
    assert oct((data / "dev-keys.env").stat().st_mode & 0o777) == "0o600"
    body = {"store_id": "berlin-1", "channel": "pos", "score": 2, "comment": SCRIPT, "customer_id": "c-1"}
    auth = {"Authorization": f"Bearer {keys['NPSLOOP_SOURCE_KEY']}"}
    assert httpx.post(f"{base}/v1/feedback", json=body, headers=auth).status_code == 202

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto(f"{base}/")
            assert page.url.endswith("/login")
            page.screenshot(path=str(SHOTS / "login.png"))
            page.fill("input[name=key]", keys["NPSLOOP_MANAGER_KEY"])
            page.click("button")
            page.wait_for_selector("#trend-chart")
            assert "Signed in to acme" in page.inner_text("body")

            # The charts render: 13 weeks of NPS with a margin band, 11 score bars.
            assert page.locator("#trend-chart .nps-point").count() == 13
            band = page.locator("#trend-chart .margin-band").bounding_box()
            assert band is not None and band["width"] > 300 and band["height"] > 10
            assert page.locator("#score-chart .score-bar").count() == 11
            bars = [int(t.split(": ")[1]) for t in page.locator("#score-chart title").all_text_contents()]
            assert sum(bars) == int(page.inner_text("#headline-n")) > 0

            # The posted <script> arrives through the whole loop and is shown as text, never run.
            deadline = time.monotonic() + 60
            while SCRIPT not in page.inner_text("#comments-table"):
                assert time.monotonic() < deadline, "the posted comment never reached the dashboard"
                time.sleep(0.5)
                page.reload()
            assert page.evaluate("window.__pwned") is None
            assert page.locator("#comments-table b").count() == 0
            page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)
            page.locator("#comments-table").screenshot(path=str(SHOTS / "dashboard-comments.png"))

            # A filter changes the figures (and keeps the key's scope).
            all_n, all_nps = page.inner_text("#headline-n"), page.inner_text("#headline-nps")
            page.select_option("select[name=period]", "quarter")
            page.click("form.filters button")
            page.wait_for_selector("#trend-chart")
            quarter_n = int(page.inner_text("#headline-n"))
            assert quarter_n > int(all_n)
            page.select_option("select[name=store_id]", "hamburg-2")
            page.click("form.filters button")
            page.wait_for_selector("#trend-chart")
            assert "store_id=hamburg-2" in page.url
            hamburg_n = int(page.inner_text("#headline-n"))
            assert 0 < hamburg_n < quarter_n and page.inner_text("#headline-nps") != all_nps
            assert page.locator("#stores-table tr").count() == 2  # the header and hamburg-2
            page.screenshot(path=str(SHOTS / "dashboard-hamburg-quarter.png"), full_page=True)

            # Every table exports to CSV, with the same filters.
            csv = page.request.get(f"{base}/export/stores.csv?store_id=hamburg-2&period=quarter")
            assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
            lines = csv.text().splitlines()
            assert lines[0].startswith("store,n,promoters") and lines[1].startswith(f"hamburg-2,{hamburg_n},")
            comments = page.request.get(f"{base}/export/comments.csv")
            assert SCRIPT in comments.text()

            # Bad input: a precise message, never a 500.
            bad = page.goto(f"{base}/?date=2026-W54")
            assert bad is not None and bad.status == 400
            assert "2026 has 53 ISO weeks" in page.inner_text("#error")
            page.screenshot(path=str(SHOTS / "dashboard-bad-week.png"))

            cookies = page.context.cookies()
            (session,) = [c for c in cookies if c["name"] == "npsloop_session"]
            assert session["httpOnly"] and session["sameSite"] == "Strict"
            assert keys["NPSLOOP_MANAGER_KEY"] not in session["value"]
            page.context.clear_cookies()
            page.context.add_cookies([{**session, "value": session["value"][:-4] + "abcd"}])  # forged
            page.goto(f"{base}/")
            assert page.url.endswith("/login")
            assert page.request.get(f"{base}/export/stores.csv").status == 401
        finally:
            browser.close()
