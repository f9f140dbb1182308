from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from npsloop_platform.settings import DatabaseSettings, SmtpSettings
from npsloop_schemas import NotificationKind

#: Kinds a customer receives; every one counts against the frequency cap.
CUSTOMER_FACING = frozenset(NotificationKind)
#: Kinds sent by email (the others: call_task, by phone).
EMAIL_KINDS = frozenset(k for k in NotificationKind if k is not NotificationKind.CALL_TASK)


class NotifierSettings(DatabaseSettings, SmtpSettings):
    group_id: str = "notifier"
    source_name: str = "npsloop-notifier"
    # A batch ends with its slowest delivery; batches of about two rounds of max_in_flight keep the
    # wait behind the previous batch short (p99 ack -> email at 500/s).
    consumer_max_batch: int = Field(default=128, ge=1, le=10_000, description="Most requests one batch holds.")
    max_in_flight: int = Field(default=64, ge=1, le=1000, description="Deliveries under way at once (per process).")
    # smtp_host, smtp_port, smtp_tls, ... and mail_from: SmtpSettings, shared with reporting's digests
    smtp_pool_size: int = Field(default=16, ge=1, le=100, description="SMTP connections kept open and reused.")
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
    retry_window_s: float = Field(
        default=21_600.0,
        ge=0,
        description=(
            "A receiver outage (refused, timeout, 5xx, 429, SMTP 4xx) is retried in the background for this long "
            "after the delivery began (default 6 h); only then is the delivery failed. 0: fail after max_attempts."
        ),
    )
    retry_backoff_max_s: float = Field(
        default=600.0, gt=0, description="The longest wait between two background retries of one delivery."
    )
    retry_poll_s: float = Field(default=1.0, gt=0, le=60, description="How often the redelivery loop looks for work.")
    retry_batch: int = Field(default=64, ge=1, le=1000, description="Due deliveries one redelivery round claims.")
    retry_after_max_s: float = Field(
        default=120.0, gt=0, description="A Retry-After longer than this fails the attempt run (replay it later)."
    )

    # -- webhooks -----------------------------------------------------------------------------
    webhook_timeout_s: float = Field(default=10.0, gt=0, description="A receiver that answers slower has failed.")
    webhook_disable_after: int = Field(
        default=20, ge=1, description="Consecutive failed deliveries after which a subscription is disabled."
    )
    webhook_rotation_overlap_s: int = Field(
        default=86_400, ge=0, description="How long the previous secret still signs after a rotation (default)."
    )
    webhook_cache_ttl_s: float = Field(default=5.0, gt=0, le=60, description="How long a replica caches subscriptions.")

    # -- templates, links ------------------------------------------------------------------------
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where customers reach the notifier's public pages (unsubscribe, reply), without a trailing /.",
    )
    link_secret: SecretStr | None = Field(
        default=None, description="Signs unsubscribe and reply links (HMAC). Required in prod mode."
    )
    link_ttl_days: int = Field(default=60, ge=1, le=3650, description="How long an unsubscribe or reply link works.")
    templates_dir: Path | None = Field(
        default=None, description="Your own templates (<kind>.<locale>.{subject,txt,html}); ours are the fallback."
    )
    branding_file: Path | None = Field(
        default=None, description="TOML: [tenants.<id>] name, logo_url, primary_color, footer, review_url."
    )
    default_locale: str = "en"

    # -- contact policy -------------------------------------------------------------------------
    contact_cap_days: float = Field(
        default=7.0, ge=0, description="At most one customer-facing message per customer in this many days."
    )
    contact_caps: dict[str, float] = Field(
        default_factory=lambda: {"acknowledgement_email": 0.0, "call_task": 0.0},
        description='Per kind, in days (0: exempt), e.g. {"review_invitation": 30}; others use contact_cap_days.',
    )
    call_quiet_hours: str = Field(
        default="20:00-08:00", description="No calls in this local time range (the store's zone); empty: none."
    )

    @field_validator("contact_caps")
    @classmethod
    def _known_kinds(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - {str(k) for k in NotificationKind}
        if unknown:
            raise ValueError(f"unknown notification kinds {sorted(unknown)}")
        if any(v < 0 for v in value.values()):
            raise ValueError("caps are days >= 0")
        return value

    @field_validator("call_quiet_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        if value and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError("expected HH:MM-HH:MM, e.g. 20:00-08:00")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        if not re.match(r"^https?://[^/]+", value):
            raise ValueError("expected an http(s) URL, e.g. https://feedback.example.com")
        return value.rstrip("/")

    def cap_days(self, kind: NotificationKind) -> float:
        return self.contact_caps.get(str(kind), self.contact_cap_days)

    def secret_for_links(self) -> bytes:
        if self.link_secret is not None:
            return self.link_secret.get_secret_value().encode()
        if self.mode == "prod":
            raise ValueError("NPSLOOP_LINK_SECRET is required in prod mode (it signs unsubscribe and reply links)")
        return b"npsloop-dev-link-secret"  # dev mode only: links are not worth forging on a laptop
