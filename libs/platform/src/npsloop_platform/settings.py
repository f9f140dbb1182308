"""Typed settings shared by every service. Environment variables use the prefix NPSLOOP_."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DATABASE_URL_ALIASES = AliasChoices("NPSLOOP_DATABASE_URL", "DATABASE_URL", "database_url")


def _postgres_url(value: str) -> str:
    """A PostgreSQL DSN with a host or a Unix socket (`?host=/run/postgresql`) and a database.

    pydantic's PostgresDsn refuses socket URLs (their host is empty), which the embedded server
    uses, so the check is done here, with SQLAlchemy's parser.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError("not a URL; expected postgresql://user:password@host:5432/database") from None
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise ValueError(f"scheme {url.drivername!r} is not PostgreSQL; expected postgresql://...") from None
    if not (url.host or url.query.get("host")):
        raise ValueError("no host: expected postgresql://user:password@host:5432/database")
    if not url.database:
        raise ValueError("no database name: expected postgresql://user:password@host:5432/database")
    return value


PostgresUrl = Annotated[str, AfterValidator(_postgres_url)]

#: Secrets nobody may run production with: an empty value, or what examples and templates ship.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "change_me", "changeit", "secret", "password", "xxx"})


def is_placeholder(secret: str) -> bool:
    return secret.strip().lower() in PLACEHOLDER_SECRETS


class PlatformSettings(BaseSettings):
    """What every service reads. Invalid values stop the service at start, with the setting's name;
    the rejected value is never echoed (it may hold a password)."""

    # NPSLOOP_SECRETS_DIR: a directory of files named like the variables (DATABASE_URL,
    # NPSLOOP_SMTP_PASSWORD, ...), each holding one secret: a Kubernetes Secret mounted as a volume.
    model_config = SettingsConfigDict(
        env_prefix="NPSLOOP_",
        env_file=".env",
        extra="ignore",
        hide_input_in_errors=True,
        secrets_dir=os.environ.get("NPSLOOP_SECRETS_DIR") or None,
    )

    mode: Literal["dev", "prod"] = Field(
        default="prod",
        description="'prod' (a service process) refuses placeholder secrets, non-HTTPS and private-address "
        "webhook URLs (SSRF); 'dev' (`make run`, `make up`, tests) allows http://127.0.0.1 receivers.",
    )
    bus: Literal["kafka", "memory"] = Field(
        default="kafka", description="'kafka' in production; 'memory' only inside one process."
    )
    kafka_bootstrap: str = Field(default="127.0.0.1:19092", description="host:port[,host:port]")
    topic_prefix: str = Field(
        default="", description="Prepended to every topic, to share one cluster between installs."
    )
    kafka_request_timeout_ms: int = Field(default=30_000, ge=1000)
    kafka_linger_ms: int = Field(default=5, ge=0, le=1000, description="Producer batching delay.")
    kafka_fetch_max_wait_ms: int = Field(
        default=25, ge=0, le=10_000, description="Longest a fetch waits for kafka_fetch_min_bytes to gather."
    )
    kafka_fetch_min_bytes: int = Field(default=16_384, ge=1, description="Bytes a fetch waits for (or the wait).")
    consumer_max_batch: int = Field(default=500, ge=1, le=10_000, description="Most messages one batch holds.")
    consumer_stuck_after_s: float = Field(
        default=120.0, gt=0, description="/readyz answers 503 once a consumer is stuck on one batch this long."
    )
    max_body_bytes: int = Field(
        default=1 << 20, ge=1024, description="Requests with a larger body get 413, before anything parses them."
    )
    max_batch_body_bytes: int = Field(
        default=5 << 20, ge=1024, description="The same for batch endpoints (`...:batch`)."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser (CORS); none by default."
    )
    access_cache_ttl_s: float = Field(
        default=5.0,
        gt=0,
        le=10,
        description="How long a replica trusts its copy of a key: revocation takes at most this.",
    )
    stores_file: str | None = Field(
        default=None,
        description="TOML store directory: time zones, countries, regions, recipients (npsloop_platform.stores).",
    )
    tracing: Literal["off", "console", "otlp"] = Field(
        default="off",
        description="OpenTelemetry traces: 'console' prints spans, 'otlp' sends them to OTEL_EXPORTER_OTLP_ENDPOINT.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "debug", "info", "warning", "error"] = "INFO"
    log_json: bool = True

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_chars(cls, value: str) -> str:
        import re

        if value and not re.fullmatch(r"[A-Za-z0-9._-]+", value):
            raise ValueError("topic_prefix may hold only letters, digits, '.', '_' and '-'")
        return value

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> PlatformSettings:
        """In prod mode a secret that is set must be real: 'changeme' or an empty one stops the start."""
        if self.mode != "prod":
            return self
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and is_placeholder(value.get_secret_value()):
                raise ValueError(
                    f"NPSLOOP_{name.upper()} is a placeholder (empty or 'changeme'): set the real secret, "
                    "or NPSLOOP_MODE=dev on a development machine"
                )
        return self


class DatabaseSettings(PlatformSettings):
    """For the services that own tables: PostgreSQL is required, and checked, at start."""

    database_url: PostgresUrl = Field(
        validation_alias=DATABASE_URL_ALIASES,
        description="postgresql://user:pass@host:5432/db (NPSLOOP_DATABASE_URL or DATABASE_URL).",
    )

    @property
    def dsn(self) -> str:
        return self.database_url

    @model_validator(mode="after")
    def _real_database_password(self) -> DatabaseSettings:
        """In prod mode a database password that is given must be real: 'changeme', or an empty one
        (`user:@host`), stops the start. Without one, the server authenticates otherwise (peer,
        certificates, a password file)."""
        from sqlalchemy.engine import make_url

        url = make_url(self.database_url)
        if self.mode == "prod" and url.password is not None and is_placeholder(url.password):
            raise ValueError(
                "DATABASE_URL has a placeholder password ('changeme' or empty): set the real one, "
                "or NPSLOOP_MODE=dev on a development machine"
            )
        return self


class SmtpSettings(PlatformSettings):
    """The SMTP server that mail goes to: the notifier's messages and reporting's digests read the
    same NPSLOOP_SMTP_* variables (one ConfigMap for both), and connect with `smtp_options()`."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(default=False, description="Upgrade the connection with STARTTLS (port 587).")
    smtp_tls: bool = Field(default=False, description="Implicit TLS from the first byte (SMTPS, port 465).")
    smtp_validate_certs: bool = True
    smtp_ca_file: Path | None = Field(default=None, description="A CA bundle to verify the SMTP server with.")
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    mail_from: str = "npsloop <noreply@npsloop.local>"

    @model_validator(mode="after")
    def _one_kind_of_tls(self) -> SmtpSettings:
        if self.smtp_tls and self.smtp_starttls:
            raise ValueError(
                "NPSLOOP_SMTP_TLS and NPSLOOP_SMTP_STARTTLS exclude each other: TLS from the first byte "
                "(SMTPS, port 465) or an upgrade of a plain connection (port 587), not both"
            )
        return self

    def smtp_options(self) -> dict[str, Any]:
        """Keyword arguments for `aiosmtplib.SMTP(...)` and `aiosmtplib.send(...)`. A CA file is read
        here, so a missing or broken one fails now, with its name, not at the first mail."""
        context = None
        if self.smtp_ca_file is not None:
            try:
                context = ssl.create_default_context(cafile=str(self.smtp_ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"NPSLOOP_SMTP_CA_FILE {self.smtp_ca_file}: {exc}") from None
        return {
            "hostname": self.smtp_host,
            "port": self.smtp_port,
            "username": self.smtp_username,
            "password": self.smtp_password.get_secret_value() if self.smtp_password else None,
            "use_tls": self.smtp_tls,
            "start_tls": self.smtp_starttls,
            "validate_certs": self.smtp_validate_certs,
            "tls_context": context,
            "timeout": self.smtp_timeout_s,
        }
