from __future__ import annotations

from pathlib import Path
from typing import Literal

from npsloop_platform.settings import PlatformSettings


class ClassifierSettings(PlatformSettings):
    group_id: str = "classifier"
    source_name: str = "npsloop-classifier"
    #: NPSLOOP_TAXONOMY_FILE: a theme taxonomy (TOML) instead of the retail default; validated on start.
    taxonomy_file: Path | None = None
    #: NPSLOOP_SENTIMENT_MODEL: `ensemble` (default), `ensemble-ngram` (with the n-gram fallback:
    #: more F1 on the paper's sets, hardly a neutral), `calibrated` or plain `vader`; see make eval-sentiment.
    sentiment_model: Literal["ensemble", "ensemble-ngram", "calibrated", "vader"] = "ensemble"
