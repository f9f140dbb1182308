from __future__ import annotations

from pydantic import Field

from npsloop_platform.settings import DatabaseSettings


class ActionsSettings(DatabaseSettings):
    group_id: str = "actions"
    source_name: str = "npsloop-actions"
    outbox_poll_s: float = Field(default=0.5, gt=0, description="Outbox relay poll interval when nobody wakes it.")
    outbox_batch: int = Field(default=1000, ge=1, le=10_000, description="Most outbox rows one relay batch publishes.")
    policy_file: str | None = Field(
        default=None, description="The actions policy (TOML); None: the default policy shipped with actions."
    )
    sla_poll_s: float = Field(default=30.0, gt=0, description="How often the SLA monitor looks for due cases.")
    sla_monitor: bool = Field(default=True, description="Run the SLA monitor in this process (one runner at a time).")
