from __future__ import annotations

from pathlib import Path
from typing import Literal

from npsloop_platform.settings import PlatformSettings


class ClassifierSettings(PlatformSettings):
    group_id: str = "classifier"
    source_name: str = "npsloop-classifier"
    #: NPSLOOP_TAXONOMY_FILE: a theme taxonomy (TOML) instead of the retail default; validated on start.
    taxonomy_file: Path | None = None
    #: NPSLOOP_SENTIMENT_MODEL: `ensemble-tiebreak` (default: the lexicon ensemble, with the n-gram
    #: model where lexicon words cancel), `ensemble` (the lexicons alone), `ensemble-ngram` (the
    #: n-gram model also where no lexicon word is found: hardly a neutral), `calibrated` or plain
    #: `vader`; see make eval-sentiment.
    sentiment_model: Literal["ensemble-tiebreak", "ensemble", "ensemble-ngram", "calibrated", "vader"] = (
        "ensemble-tiebreak"
    )
