"""The digest reads the same NPSLOOP_SMTP_* settings as the notifier and honours all of them:
implicit TLS (SMTPS, 465), STARTTLS, a CA file and AUTH, against a real aiosmtpd on loopback."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from pydantic import ValidationError

from npsloop_platform.testing.servers import SmtpSink, tls_smtp_server
from npsloop_reporting.config import ReportingSettings
from npsloop_reporting.mailer import SmtpMailer, digest_message

LOGIN = (b"digest", b"s3cret")


def settings(**kw: Any) -> ReportingSettings:
    return ReportingSettings(mode="dev", database_url="postgresql://u@127.0.0.1:5432/db", **kw)


def digest() -> Any:
    return digest_message(
        "npsloop <noreply@example.com>", ["mgr@example.com"], "berlin-1: NPS", "text", "<p>html</p>", "d-1"
    )


@pytest.fixture(params=[True, False], ids=["smtps", "starttls"])
def tls_server(request: pytest.FixtureRequest) -> Iterator[tuple[SmtpSink, Path, bool]]:
    implicit: bool = request.param
    with (
        tempfile.TemporaryDirectory() as tmp,
        tls_smtp_server(Path(tmp), implicit=implicit, login=LOGIN) as (sink, cert),
    ):
        yield sink, cert, implicit


async def test_a_digest_goes_over_tls_with_auth_and_the_ca_file(tls_server: tuple[SmtpSink, Path, bool]) -> None:
    sink, cert, implicit = tls_server
    tls = {"smtp_tls": True} if implicit else {"smtp_starttls": True}
    good = settings(smtp_port=sink.port, smtp_ca_file=cert, smtp_username="digest", smtp_password="s3cret", **tls)
    await SmtpMailer(good).send(["mgr@example.com"], digest())
    assert [m["Subject"] for m in sink.messages] == ["berlin-1: NPS"]
    # The certificate is checked: without the CA file the self-signed server is refused.
    untrusted = settings(smtp_port=sink.port, smtp_username="digest", smtp_password="s3cret", smtp_timeout_s=3, **tls)
    with pytest.raises((aiosmtplib.SMTPException, OSError)):
        await SmtpMailer(untrusted).send(["mgr@example.com"], digest())
    assert len(sink.messages) == 1


def test_tls_and_starttls_together_stop_the_start_naming_both() -> None:
    with pytest.raises(ValidationError, match="NPSLOOP_SMTP_TLS and NPSLOOP_SMTP_STARTTLS exclude each other"):
        settings(smtp_tls=True, smtp_starttls=True)


def test_a_missing_ca_file_stops_the_start_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NPSLOOP_SMTP_CA_FILE"):
        SmtpMailer(settings(smtp_tls=True, smtp_ca_file=tmp_path / "missing.pem"))
