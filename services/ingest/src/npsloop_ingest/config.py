from __future__ import annotations

from pydantic import Field

from npsloop_platform.settings import DatabaseSettings


class IngestSettings(DatabaseSettings):
    """Ingest reads API keys from PostgreSQL (the `access` schema), so it needs DATABASE_URL too."""

    source_name: str = Field(default="npsloop-ingest", description="The envelope's `source`.")
    # Ingest answers each post once Kafka acknowledged it, so a linger is added to every answer.
    # aiokafka keeps one produce request in flight per broker: posts that arrive meanwhile share the
    # next one, so load batches without it. At 64 posts at once, linger 5 ms held ingest to 0.50x the
    # bare endpoint, 0 to 0.65x, with paced p99 at 1,000 posts/s no worse (bench/README.md).
    kafka_linger_ms: int = Field(
        default=0, ge=0, le=1000, description="Producer batching delay (ingest: 0, the other services: 5)."
    )
    publish_timeout_s: float = Field(
        default=5.0, gt=0, description="How long ingest waits for a Kafka ack before answering 503."
    )
    retry_after_s: int = Field(default=5, ge=1, description="Retry-After sent with a 503.")
    rate_limit_per_s: float = Field(
        default=1000.0, gt=0, description="Answers per second one API key may sustain, per ingest replica."
    )
    rate_limit_burst: int = Field(default=2000, ge=1, description="Answers one API key may send at once, per replica.")
    idempotency_retention_s: float = Field(
        default=7 * 86400,
        gt=0,
        description="How long an accepted event id is remembered: repeats are duplicates and late PATCHes "
        "are possible within it (default 7 days).",
    )
