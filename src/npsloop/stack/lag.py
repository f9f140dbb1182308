"""Consumer lag: for a group, the newest offset minus the committed one, summed over partitions."""

from __future__ import annotations

from collections.abc import Sequence


async def group_lag(bootstrap: str, groups: Sequence[str], prefix: str = "") -> dict[str, int | None]:
    """Lag per consumer group (None: the group has committed nothing yet, or Kafka is down)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    out: dict[str, int | None] = {g: None for g in groups}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
    except (KafkaError, OSError):
        await admin.close()
        return out
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await consumer.start()
        for group in groups:
            committed = await admin.list_consumer_group_offsets(prefix + group)
            if not committed:
                continue
            ends = await consumer.end_offsets(list(committed))
            out[group] = sum(max(0, ends[tp] - meta.offset) for tp, meta in committed.items() if meta.offset >= 0)
    except (KafkaError, OSError):
        pass
    finally:
        await consumer.stop()
        await admin.close()
    return out
