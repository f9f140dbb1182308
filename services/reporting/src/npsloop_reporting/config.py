from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from npsloop_platform.settings import DatabaseSettings, SmtpSettings


class ReportingSettings(DatabaseSettings, SmtpSettings):
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
    # smtp_host, smtp_port, smtp_tls, ... and mail_from: SmtpSettings, the same as the notifier's
    mail_dir: Path | None = Field(
        default=None, description="Write digests to this Maildir instead of SMTP (the embedded default)."
    )
    dashboard_url: str = Field(default="http://127.0.0.1:8000/", description="Linked from the digest.")
