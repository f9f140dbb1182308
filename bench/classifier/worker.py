"""The classifier's consumer alone on real Kafka, as the service runs it (EventConsumer on KafkaBus,
default settings), without HTTP: `python -m bench.classifier.worker --bootstrap H:P --prefix P`.
Stops on SIGTERM (stop fetching, finish the batch, commit)."""

from __future__ import annotations

import argparse
import asyncio
import signal

from npsloop_classifier.config import ClassifierSettings
from npsloop_classifier.consumer import build_consumer
from npsloop_classifier.handlers import Classifier
from npsloop_platform.bus.kafka import KafkaBus


async def run(bootstrap: str, prefix: str, group: str) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    bus = KafkaBus(bootstrap, topic_prefix=prefix)
    await bus.start()
    # the classifier has no tables
    settings = ClassifierSettings(database_url="postgresql://unused@127.0.0.1/unused", group_id=group)
    consumer = build_consumer(settings, bus, Classifier())
    await consumer.start()
    try:
        await stopping.wait()
    finally:
        await consumer.stop()
        await bus.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--group", default="classifier", help="consumer group (one per bench round)")
    args = ap.parse_args()
    asyncio.run(run(args.bootstrap, args.prefix, args.group))


if __name__ == "__main__":
    main()
