from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from npsloop_platform.settings import DatabaseSettings


class NotifierSettings(DatabaseSettings):
    group_id: str = "notifier"
    source_name: str = "npsloop-notifier"
    # A batch ends with its slowest delivery; batches of about two rounds of max_in_flight keep the
    # wait behind the previous batch short (p99 ack -> email at 500/s).
    consumer_max_batch: int = Field(default=128, ge=1, le=10_000, description="Most requests one batch holds.")
    max_in_flight: int = Field(default=64, ge=1, le=1000, description="Deliveries under way at once (per process).")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    smtp_pool_size: int = Field(default=16, ge=1, le=100, description="SMTP connections kept open and reused.")
    mail_from: str = "npsloop <noreply@npsloop.local>"
    mail_dir: Path | None = Field(
        default=None, description="Write mail to this Maildir instead of SMTP (the embedded default)."
    )
    call_task_url: str | None = Field(default=None, description="POST call tasks here (JSON).")
    call_task_dir: Path | None = Field(
        default=None, description="Write call tasks as JSON files here instead (the embedded default)."
    )
    http_timeout_s: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=50)
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
