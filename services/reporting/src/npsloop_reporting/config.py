from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from npsloop_platform.settings import DatabaseSettings


class ReportingSettings(DatabaseSettings):
    group_id: str = "reporting"
    source_name: str = "npsloop-reporting"
    min_answers: int = Field(
        default=30, ge=1, le=10_000, description="Below this many answers a period shows 'too few answers', no margin."
    )
    default_sla_hours: float = Field(
        default=48.0, gt=0, description="The SLA of a case whose case.opened carried no sla_due_at."
    )
    session_secret: SecretStr | None = Field(
        default=None, description="Signs dashboard sessions (shared by replicas); random per start when unset."
    )
    digest_enabled: bool = Field(
        default=True, description="Send the Monday 08:00 digest to the store directory's recipients."
    )
    digest_poll_s: float = Field(default=60.0, gt=0, description="How often the digest scheduler looks at the clock.")
    digest_hour: int = Field(default=8, ge=0, le=23, description="Local hour on Monday when the digest goes out.")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    mail_from: str = "npsloop <noreply@npsloop.local>"
    mail_dir: Path | None = Field(
        default=None, description="Write digests to this Maildir instead of SMTP (the embedded default)."
    )
    dashboard_url: str = Field(default="http://127.0.0.1:8000/", description="Linked from the digest.")
