"""Typed settings shared by every service. Environment variables use the prefix NPSLOOP_."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class PlatformSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NPSLOOP_", env_file=".env", extra="ignore")

    bus: Literal["kafka", "memory"] = Field(
        default="kafka", description="'kafka' in production; 'memory' only inside one process."
    )
    kafka_bootstrap: str = Field(default="127.0.0.1:19092", description="host:port[,host:port]")
    topic_prefix: str = Field(
        default="", description="Prepended to every topic, to share one cluster between installs."
    )
    kafka_request_timeout_ms: int = Field(default=30_000, ge=1000)
    publish_timeout_s: float = Field(
        default=5.0, gt=0, description="How long ingest waits for a Kafka ack before answering 503."
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("NPSLOOP_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="postgresql://user:pass@host/db (NPSLOOP_DATABASE_URL or DATABASE_URL).",
    )

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "This service needs PostgreSQL: set DATABASE_URL=postgresql://user:pass@host:5432/db "
                "(make run and make up start an embedded server for you)."
            )
        return self.database_url

    log_level: str = "INFO"
    log_json: bool = True
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_chars(cls, value: str) -> str:
        import re

        if value and not re.fullmatch(r"[A-Za-z0-9._-]+", value):
            raise ValueError("topic_prefix may hold only letters, digits, '.', '_' and '-'")
        return value
