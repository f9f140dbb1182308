"""Message buses: real Kafka (aiokafka) and an in-memory bus with the same interface."""

from ..settings import PlatformSettings
from .base import Bus, Message, RawConsumer, TopicPartition
from .memory import MemoryBus

__all__ = ["Bus", "MemoryBus", "Message", "RawConsumer", "TopicPartition", "make_bus"]


def make_bus(settings: PlatformSettings) -> Bus:
    """Build the bus named by settings.bus ('kafka' or 'memory')."""
    if settings.bus == "memory":
        return MemoryBus(topic_prefix=settings.topic_prefix)
    from .kafka import KafkaBus

    return KafkaBus(
        settings.kafka_bootstrap,
        topic_prefix=settings.topic_prefix,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        linger_ms=settings.kafka_linger_ms,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        fetch_min_bytes=settings.kafka_fetch_min_bytes,
    )
