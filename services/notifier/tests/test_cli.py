"""`npsloop webhooks ...` against DATABASE_URL, as a user runs it, with the notifier delivering."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from sqlalchemy.engine import make_url
from standardwebhooks import Webhook

from npsloop_platform.bus import MemoryBus
from npsloop_platform.testing.helpers import eventually

from .conftest import Receiver, started_service, stop_service


def npsloop(database_url: str, *args: str, mode: str = "dev") -> subprocess.CompletedProcess[str]:
    if mode == "prod":  # prod refuses an empty password; the test server trusts any
        url = make_url(database_url)
        database_url = url.set(password="not-a-placeholder").render_as_string(hide_password=False)
    env = {**os.environ, "DATABASE_URL": database_url, "NPSLOOP_MODE": mode}
    return subprocess.run(
        [sys.executable, "-m", "npsloop.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow
async def test_create_list_rotate_replay_and_delete_from_the_shell(database_url: str, receiver: Receiver) -> None:
    refused = npsloop(database_url, "webhooks", "create", "--tenant", "acme", "--url", receiver.url,
                      "--event-type", "case.opened", mode="prod")  # fmt: skip
    assert refused.returncode == 2 and "only https" in refused.stdout
    created = npsloop(database_url, "webhooks", "create", "--tenant", "acme", "--url", receiver.url,
                      "--event-type", "case.opened")  # fmt: skip
    assert created.returncode == 0, created.stderr
    secret = created.stdout.split()[0]
    sub_id = re.search(r"Subscription ([0-9a-f-]{36})", created.stdout).group(1)  # type: ignore[union-attr]
    assert secret.startswith("whsec_")
    listed = npsloop(database_url, "webhooks", "list", "--tenant", "acme", "--json")
    assert sub_id in listed.stdout and secret not in listed.stdout
    assert "[]" in npsloop(database_url, "webhooks", "list", "--tenant", "globex", "--json").stdout

    bus = MemoryBus()
    await bus.start()
    service, parts = await started_service(bus, database_url, max_attempts=1)
    try:
        receiver.script = [(500, {}, 0.0)]
        await service.publish_case_opened()

        async def failed() -> bool:
            rows = (await service.http.get("/v1/deliveries", params={"status": "failed"})).json()["deliveries"]
            return len(rows) == 1

        await eventually(failed, timeout=30, what="a failed delivery")
        shown = npsloop(database_url, "webhooks", "deliveries", "--tenant", "acme", "--status", "failed")
        assert "HTTP 500" in shown.stdout
        rotated = npsloop(database_url, "webhooks", "rotate", "--tenant", "acme", sub_id, "--overlap-s", "600")
        new_secret = rotated.stdout.split()[0]
        assert rotated.returncode == 0 and new_secret.startswith("whsec_") and new_secret != secret
        replayed = npsloop(database_url, "webhooks", "replay", "--tenant", "acme", "--subscription", sub_id)
        assert replayed.returncode == 0 and "replayed 1: 1 sent" in replayed.stdout, replayed.stdout + replayed.stderr
        (accepted,) = receiver.accepted()
        Webhook(new_secret).verify(accepted.body, accepted.headers)
        Webhook(secret).verify(accepted.body, accepted.headers)  # within the overlap, the old one too
        assert npsloop(database_url, "webhooks", "delete", "--tenant", "globex", sub_id).returncode == 1
        assert npsloop(database_url, "webhooks", "delete", "--tenant", "acme", sub_id).returncode == 0
    finally:
        await stop_service(service, parts)
        await bus.stop()
