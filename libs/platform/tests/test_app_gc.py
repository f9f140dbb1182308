"""A served app keeps what it made at startup out of the cyclic collector's sight (gc.freeze), and
hands it back at shutdown, so that a process starting many apps (the tests) can still collect."""

from __future__ import annotations

import gc

from npsloop_platform.app import AppState, create_app
from npsloop_platform.bus import MemoryBus
from npsloop_platform.settings import PlatformSettings


async def test_startup_objects_are_frozen_while_the_app_serves_and_unfrozen_after() -> None:
    bus = MemoryBus()
    app = create_app("t", [bus], [], AppState(bus=bus, settings=PlatformSettings(_env_file=None)))  # type: ignore[call-arg]
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 10_000  # modules, routes, validators: what lives as long as the process
    assert gc.get_freeze_count() == 0
