"""The lifecycle every part of a service shares: start, stop, ready.

`Component` is the protocol the app factory starts in order and stops in reverse. `Background`
is the base of every part that runs a loop of its own (consumers, the outbox relay): the task,
the `stopping` event and the readiness check are written once, here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from .retry import Stopped, wait_or_stop

log = logging.getLogger(__name__)


class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def ready(self) -> bool: ...


class Background:
    """A component running `run()` as one task until `stop()`; `Stopped` ends it quietly."""

    name: str = "background"

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def start(self) -> None:
        self.stopping.clear()
        self._task = asyncio.create_task(self._main(), name=self.name)

    async def _main(self) -> None:
        try:
            await self.run()
        except Stopped:
            pass
        except Exception:
            log.exception("%s crashed", self.name)
            raise

    def stop_requested(self) -> None:
        """Hook: wake whatever `run()` waits on so that it notices `stopping`."""

    async def stop(self) -> None:
        self.stopping.set()
        self.stop_requested()
        if self._task is not None:
            try:
                await self._task
            finally:
                self._task = None

    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def ready(self) -> bool:
        return self.running()

    async def sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; True when the component is stopping."""
        return await wait_or_stop(self.stopping, seconds)
