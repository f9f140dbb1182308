"""Settings fail at start, with the setting's name and without echoing a secret."""

from __future__ import annotations

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
