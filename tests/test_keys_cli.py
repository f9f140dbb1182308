"""`npsloop keys create|list|revoke` against DATABASE_URL, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from npsloop_platform.bus import MemoryBus


def npsloop(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "npsloop.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


async def test_create_list_revoke_and_the_audit_log(database_url: str) -> None:
    created = npsloop(database_url, "keys", "create", "--tenant", "acme", "--role", "manager", "--store", "berlin-1")
    assert created.returncode == 0, created.stderr
    key = created.stdout.split()[0]
    assert key.startswith("npsk_") and "only time the key is shown" in created.stdout
    prefix = key.split("_")[1]

    listed = npsloop(database_url, "keys", "list", "--tenant", "acme")
    assert prefix in listed.stdout and "berlin-1" in listed.stdout and key[14:] not in listed.stdout

    from npsloop.loop import Loop

    bus = MemoryBus()
    await bus.start()
    loop = Loop(bus, database_url, log_json=False)
    await loop.start()
    try:
        app = loop.app(manage_bus=False, manage_components=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as http:
            headers = {"Authorization": f"Bearer {key}"}
            assert (await http.get("/v1/cases", headers=headers)).status_code == 200
            revoked = npsloop(database_url, "keys", "revoke", prefix)
            assert revoked.returncode == 0 and "revoked" in revoked.stdout
            loop.keys._cache.clear()  # this process's cache; the cache time itself is tested elsewhere
            assert (await http.get("/v1/cases", headers=headers)).status_code == 401
        assert npsloop(database_url, "keys", "revoke", prefix).returncode == 1  # already revoked: says so
        bad = npsloop(database_url, "keys", "create", "--tenant", "acme", "--role", "owner")
        assert bad.returncode == 2 and "invalid choice" in bad.stderr
        audit = await loop.keys.audit("acme")
        assert [a["action"] for a in audit] == ["key.revoked", "key.created"]
        assert all(a["actor"].startswith("cli:") for a in audit)
    finally:
        await loop.stop()
        await bus.stop()


async def test_cors_is_off_by_default_and_on_for_listed_origins(database_url: str) -> None:
    from npsloop.loop import Loop

    bus = MemoryBus()
    await bus.start()
    loop = Loop(bus, database_url, log_json=False, cors_origins=["https://crm.example.com"])
    try:
        app = loop.app(manage_bus=False, manage_components=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as http:
            pre = {"Origin": "https://crm.example.com", "Access-Control-Request-Method": "POST"}
            allowed = await http.options("/v1/feedback", headers=pre)
            other = await http.options("/v1/feedback", headers={**pre, "Origin": "https://evil.example"})
        assert allowed.headers.get("access-control-allow-origin") == "https://crm.example.com"
        assert "access-control-allow-origin" not in other.headers
    finally:
        await bus.stop()


def test_the_cli_works_on_the_embedded_defaults_data_dir_without_database_url() -> None:
    import shutil
    import tempfile

    data = tempfile.mkdtemp(prefix="npsloop-cli-")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NPSLOOP_DATABASE_URL")}
    env["NPSLOOP_DATA_DIR"] = data
    try:
        run = [sys.executable, "-m", "npsloop.cli", "keys"]
        created = subprocess.run(
            [*run, "create", "--tenant", "acme", "--role", "admin"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert created.returncode == 0, created.stderr[-2000:]
        listed = subprocess.run([*run, "list", "--json"], env=env, capture_output=True, text=True, timeout=120)
        assert listed.returncode == 0 and created.stdout.split()[0].split("_")[1] in listed.stdout
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_the_cli_offers_exactly_the_roles_the_access_store_knows() -> None:
    from npsloop.keys_cli import ROLES
    from npsloop_platform.access import Role

    assert tuple(r.value for r in Role) == ROLES


def test_help_does_not_import_the_services() -> None:
    """`npsloop --help` took 1.3 s when the keys and webhooks parsers imported the access store
    and the notifier at load time; the commands import them now. Only `run` and `demo` need them."""
    probe = (
        "import sys\n"
        "from npsloop.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('npsloop_notifier', 'npsloop_platform', 'sqlalchemy', 'fastapi')))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
