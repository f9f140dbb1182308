"""Publishing with a deadline: either Kafka acknowledged the write, or the caller gets PublishFailed."""

from __future__ import annotations

import asyncio

from npsloop_platform.bus import Bus


class PublishFailed(Exception):
    pass


async def publish_with_deadline(bus: Bus, topic: str, value: bytes, key: str, timeout_s: float) -> None:
    """A timed-out write may still land later; downstream dedupes on event_id, so a retry is safe."""
    try:
        async with asyncio.timeout(timeout_s):
            await bus.publish(topic, value, key=key)
    except TimeoutError as exc:
        raise PublishFailed(f"no acknowledgement within {timeout_s}s") from exc
    except Exception as exc:  # broker unreachable, not connected, not leader...
        raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc
