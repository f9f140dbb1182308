"""Settings fail at start, with the setting's name and without echoing a secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from npsloop_platform.settings import DatabaseSettings


def test_a_service_with_tables_refuses_to_start_without_a_database(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "NPSLOOP_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match="DATABASE_URL"):  # names the variable to set
        DatabaseSettings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "url",
    ["mysql://root:hunter2@db/x", "postgresql://root:hunter2@/x", "postgresql://root:hunter2@db", "not a url hunter2"],
)
def test_a_bad_database_url_is_refused_without_showing_it(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        DatabaseSettings(database_url=url)
    assert "database_url" in str(info.value) and "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    "url", ["postgresql://u:p@db:5432/npsloop", "postgres://u@db/npsloop", "postgresql://u@/npsloop?host=/run/pg"]
)
def test_tcp_and_socket_urls_are_accepted(url: str) -> None:
    assert DatabaseSettings(database_url=url).dsn == url


def test_prod_mode_refuses_a_placeholder_secret_naming_the_variable() -> None:
    from pydantic import SecretStr

    class WithSecret(DatabaseSettings):
        smtp_password: SecretStr | None = None

    url = "postgresql://npsloop:s3cr3t-Value@db:5432/npsloop"
    for placeholder in ("changeme", "", "CHANGEME "):
        with pytest.raises(ValidationError, match="NPSLOOP_SMTP_PASSWORD") as info:
            WithSecret(mode="prod", database_url=url, smtp_password=SecretStr(placeholder))
        assert "s3cr3t-Value" not in str(info.value)
    assert WithSecret(mode="dev", database_url=url, smtp_password=SecretStr("changeme")).mode == "dev"
    assert WithSecret(mode="prod", database_url=url, smtp_password=SecretStr("a-real-one")).mode == "prod"


@pytest.mark.parametrize("url", ["postgresql://npsloop:changeme@db:5432/x", "postgresql://npsloop:@db:5432/x"])
def test_prod_mode_refuses_a_database_password_that_is_a_placeholder(url: str) -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        DatabaseSettings(mode="prod", database_url=url)
    assert DatabaseSettings(mode="dev", database_url=url).dsn == url
    # no password at all: the server authenticates otherwise (peer on a socket, certificates)
    assert DatabaseSettings(mode="prod", database_url="postgresql://u@/x?host=/run/pg").mode == "prod"
    assert DatabaseSettings(mode="prod", database_url="postgresql://u@db:5432/x").mode == "prod"


def test_the_default_mode_is_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NPSLOOP_MODE", raising=False)
    assert DatabaseSettings(_env_file=None, database_url="postgresql://u:p4ss@db/x").mode == "prod"  # type: ignore[call-arg]


def test_secrets_are_read_from_files_in_npsloop_secrets_dir(tmp_path: Path) -> None:
    """The Kubernetes Deployments mount the Secret as files (never as environment variables)."""
    (tmp_path / "DATABASE_URL").write_text("postgresql://npsloop:file-Pa55@db:5432/npsloop\n")
    (tmp_path / "NPSLOOP_SMTP_PASSWORD").write_text("changeme")
    code = (
        "from npsloop_notifier.config import NotifierSettings\n"
        "try:\n"
        "    NotifierSettings(_env_file=None)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, str(exc).replace(chr(10), ' '))\n"
        "from npsloop_platform.settings import DatabaseSettings\n"
        "print(DatabaseSettings(_env_file=None).dsn)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPSLOOP_") and k != "DATABASE_URL"}
    env |= {"NPSLOOP_SECRETS_DIR": str(tmp_path), "NPSLOOP_MODE": "prod"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    refused, dsn = out.stdout.strip().splitlines()
    assert "NPSLOOP_SMTP_PASSWORD" in refused and "placeholder" in refused  # a file with a placeholder too
    assert dsn == "postgresql://npsloop:file-Pa55@db:5432/npsloop"
