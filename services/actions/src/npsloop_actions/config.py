from __future__ import annotations

from pydantic import Field

from npsloop_platform.settings import PlatformSettings


class ActionsSettings(PlatformSettings):
    group_id: str = "actions"
    source_name: str = "npsloop-actions"
    outbox_poll_s: float = Field(default=0.1, gt=0, description="Outbox relay poll interval.")
    outbox_batch: int = Field(default=500, ge=1, le=10_000)
