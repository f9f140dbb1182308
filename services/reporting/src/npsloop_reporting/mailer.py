"""Sending a digest: SMTP with aiosmtplib, or a local Maildir (the embedded default), in the same
way as the notifier's mail channel (services/notifier/.../channels.py). Reporting does not import
the notifier: each image installs only its own member."""

from __future__ import annotations

import asyncio
import mailbox
from email.charset import QP, Charset
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate, getaddresses
from pathlib import Path
from typing import Protocol

import aiosmtplib

from .config import ReportingSettings

_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


class Mailer(Protocol):
    async def send(self, recipients: list[str], message: MIMEMultipart) -> None: ...


def digest_message(
    sender: str, recipients: list[str], subject: str, text: str, html: str, msg_id: str
) -> MIMEMultipart:
    msg = MIMEMultipart("alternative")
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = f"<{msg_id}@npsloop>"
    msg.attach(MIMEText(text, "plain", _UTF8_QP))  # type: ignore[arg-type]
    msg.attach(MIMEText(html, "html", _UTF8_QP))  # type: ignore[arg-type]
    return msg


class SmtpMailer:
    """One connection per digest (a few a week): the notifier's SMTP settings, without its pool."""

    def __init__(self, settings: ReportingSettings) -> None:
        self.options = settings.smtp_options()
        self.sender = getaddresses([settings.mail_from])[0][1] or settings.mail_from

    async def send(self, recipients: list[str], message: MIMEMultipart) -> None:
        await aiosmtplib.send(message.as_bytes(), sender=self.sender, recipients=recipients, **self.options)


class MaildirMailer:
    def __init__(self, directory: Path) -> None:
        for sub in ("tmp", "new", "cur"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        self.box = mailbox.Maildir(directory, create=False)

    async def send(self, recipients: list[str], message: MIMEMultipart) -> None:
        await asyncio.to_thread(self.box.add, message)


def mailer_for(settings: ReportingSettings) -> Mailer:
    return MaildirMailer(settings.mail_dir) if settings.mail_dir else SmtpMailer(settings)
