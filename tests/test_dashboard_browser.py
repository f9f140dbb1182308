"""The dashboard in a real browser (Debian's chromium, driven by Playwright): `npsloop run` as its
own process, the login form, the signed session, and a forged cookie sent back to the form.
Screenshots go to .cache/screenshots/."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import httpx
import pytest

from npsloop_platform.testing.helpers import dev_keys, npsloop_run

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / ".cache" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_sign_in_see_the_dashboard_and_a_forged_cookie_is_refused(database_url: str) -> None:
    assert CHROMIUM, "Debian's chromium is missing: `make browser` installs it (make test does)"

    data = Path(tempfile.mkdtemp(prefix="npsloop-browser-"))
    try:
        with npsloop_run(database_url, data) as base:
            browse(base, data)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def browse(base: str, data: Path) -> None:
    from playwright.sync_api import sync_playwright

    keys = dev_keys(data)
    assert oct((data / "dev-keys.env").stat().st_mode & 0o777) == "0o600"
    body = {"store_id": "berlin-1", "channel": "pos", "score": 2, "comment": "Long wait", "customer_id": "c-1"}
    auth = {"Authorization": f"Bearer {keys['NPSLOOP_SOURCE_KEY']}"}
    assert httpx.post(f"{base}/v1/feedback", json=body, headers=auth).status_code == 202

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{base}/")
            assert page.url.endswith("/login")
            page.screenshot(path=str(SHOTS / "login.png"))
            page.fill("input[name=key]", keys["NPSLOOP_MANAGER_KEY"])
            page.click("button")
            page.wait_for_selector("text=Newest cases")
            assert "Signed in to acme" in page.inner_text("body")
            page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)
            cookies = page.context.cookies()
            (session,) = [c for c in cookies if c["name"] == "npsloop_session"]
            assert session["httpOnly"] and session["sameSite"] == "Strict"
            assert keys["NPSLOOP_MANAGER_KEY"] not in session["value"]
            page.context.clear_cookies()
            page.context.add_cookies([{**session, "value": session["value"][:-4] + "abcd"}])  # forged
            page.goto(f"{base}/")
            assert page.url.endswith("/login")
        finally:
            browser.close()
