from __future__ import annotations

from pathlib import Path

from npsloop_platform.settings import PlatformSettings


class ClassifierSettings(PlatformSettings):
    group_id: str = "classifier"
    source_name: str = "npsloop-classifier"
    #: NPSLOOP_TAXONOMY_FILE: a theme taxonomy (TOML) instead of the retail default; validated on start.
    taxonomy_file: Path | None = None
