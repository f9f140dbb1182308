"""Run a service's database migrations and exit: the Kubernetes migrations Job, before a rollout.

    python -m npsloop_platform.migrate npsloop_actions

It builds the service as its process would (same settings, same environment) and runs only the
`Migrations` components, in order. Services still migrate on start; at head that is a no-op.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys

from .db import Migrations

log = logging.getLogger("npsloop.migrate")


async def migrate_service(package: str) -> list[str]:
    main = importlib.import_module(f"{package}.main")
    app = main.create_app()
    done = []
    for component in app.state.npsloop.components:
        if isinstance(component, Migrations):
            await component.start()
            done.append(component.schema)
            log.info("schema %s is at head", component.schema)
    return done


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m npsloop_platform.migrate <service package, e.g. npsloop_actions>", file=sys.stderr)
        return 2
    schemas = asyncio.run(migrate_service(args[0]))
    print(f"migrated: {', '.join(schemas) or 'nothing (this service owns no tables)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
