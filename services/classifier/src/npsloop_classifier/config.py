from __future__ import annotations

from npsloop_platform.settings import PlatformSettings


class ClassifierSettings(PlatformSettings):
    group_id: str = "classifier"
    source_name: str = "npsloop-classifier"
