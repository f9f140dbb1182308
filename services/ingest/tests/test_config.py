"""Ingest's own defaults where they differ from the platform's."""

from __future__ import annotations

import pytest

from npsloop_ingest.config import IngestSettings
from npsloop_platform.bus import make_bus
from npsloop_platform.bus.kafka import KafkaBus
from npsloop_platform.settings import PlatformSettings


def test_ingest_does_not_linger_before_producing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each answer waits for Kafka's ack, so a linger is added to every post; the other services
    batch what their consumed batches publish and keep 5 ms. The variable still overrides it."""
    monkeypatch.delenv("NPSLOOP_KAFKA_LINGER_MS", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@127.0.0.1/db")
    bus = make_bus(IngestSettings(bus="kafka"))
    assert isinstance(bus, KafkaBus) and bus._linger_ms == 0
    assert PlatformSettings().kafka_linger_ms == 5
    monkeypatch.setenv("NPSLOOP_KAFKA_LINGER_MS", "3")
    assert IngestSettings().kafka_linger_ms == 3
    monkeypatch.setenv("NPSLOOP_KAFKA_LINGER_MS", "-1")
    with pytest.raises(ValueError, match="kafka_linger_ms"):
        IngestSettings()
