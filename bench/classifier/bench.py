"""`make bench-classifier`: the classifier's throughput through real Kafka next to a pass-through
consume-and-produce hop with no logic, in the same run, and its model time on one core.

1. **Model time**: the comments below classified in this process (`classify()`: PII redaction,
   language, sentiment, themes with clause sentiment, flags), CPU time of this one thread
   (`time.process_time`), so comments/s is per core. Each stage is timed apart as well.
2. **Kafka**: N feedback.received events (every one with a comment), serialized as ingest does,
   produced to a topic of a broker of its own. Then, in turn on the same backlog (--repeats
   rounds, pass-through then classifier), each in its own process and consumer group:
   - pass-through: `bench.raw_hops hop` (raw aiokafka, no decode, no logic; manual commits after
     acks, idempotent acks=all producer, like the service edge);
   - classifier: `bench.classifier.worker` (the service's EventConsumer on KafkaBus, default settings).
   events/s = N / (last output arrival - first output arrival): the backlog drained, start-up excluded.
   The ratio is best classifier run / best pass-through run: on this shared machine one run of
   either side can be a third slower than the next, and the best is the least disturbed.
Targets (issue 8): classifier >= 50% of pass-through; >= 5,000 comments/s of model time on one core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.classifier.eval_themes import load as load_themes
from bench.infra import RESULTS_DIR, Children, log, work_dir
from bench.raw_hops import create_topics, producer
from npsloop_classifier.flags import redact
from npsloop_classifier.handlers import Classifier, classify, plain_text
from npsloop_platform.testing.servers import free_port
from npsloop_schemas import Contact, FeedbackReceivedPayloadV1, FeedbackReceivedV1, customer_key, serialize_event

EXTRA = [
    "Die Mitarbeiter waren sehr freundlich, aber die Schlange war lang",
    "Очень долго ждали на кассе",
    "店员很友好，但是排队时间太长了",  # noqa: RUF001
    "<p>Great <b>staff</b> &amp; quick checkout</p>",
    "Call me on 07700 900123 or mail ann@example.com, I was charged twice",
    "👍👍",
    ("The staff were friendly but the queue was long and the prices too high. " * 8).strip(),
]


def comments() -> list[str]:
    return [ex.text for ex in load_themes()] + EXTRA


def events(n: int) -> list[FeedbackReceivedV1]:
    texts = comments()
    out = []
    for i in range(n):
        eid = uuid.uuid4()
        payload = FeedbackReceivedPayloadV1(
            score=i % 11,
            comment=texts[i % len(texts)],
            customer_id=f"c-{i:06d}",
            store_id=f"store-{i % 40:02d}",
            channel="pos",
            contact=Contact(email=f"c{i}@example.com"),
        )
        out.append(
            FeedbackReceivedV1(
                event_id=eid,
                occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
                tenant_id="bench",
                source="bench",
                correlation_id=eid,
                payload=payload,
            )
        )
    return out


def model_time(sample: list[FeedbackReceivedV1], rounds: int) -> dict[str, Any]:
    c = Classifier()
    texts = [e.payload.comment or "" for e in sample]
    for e in sample:  # warm caches and the lazily loaded language models
        classify(e, c, "bench")
    stages: dict[str, float] = {}

    def timed(name: str, fn: Any) -> None:
        t0 = time.process_time()
        for _ in range(rounds):
            for t in texts:
                fn(t)
        stages[name] = (time.process_time() - t0) / (rounds * len(texts)) * 1e6

    timed("pii_redaction", redact)
    timed("language", lambda t: c.detector(plain_text(t)))
    timed("sentiment", lambda t: c.sentiment(plain_text(t)))
    timed("themes_with_clause_sentiment", lambda t: c.taxonomy.theme_compounds(plain_text(t), c.sentiment.compound))
    per_round = []
    for _ in range(rounds):  # the machine is shared: the best round is the least disturbed one
        t0 = time.process_time()
        for e in sample:
            classify(e, c, "bench")
        per_round.append((time.process_time() - t0) / len(sample))
    best, median = min(per_round), sorted(per_round)[len(per_round) // 2]
    return {
        "comments_per_s": 1 / best,
        "comments_per_s_median_round": 1 / median,
        "us_per_comment": best * 1e6,
        "stages_us": stages,
        "model": c.model_name,
    }


async def produce(bootstrap: str, topic: str, msgs: list[tuple[bytes, bytes]]) -> None:
    prod: AIOKafkaProducer = producer(bootstrap)
    await prod.start()
    try:
        futures = [await prod.send(topic, v, key=k) for k, v in msgs]
        await asyncio.gather(*futures)
    finally:
        await prod.stop()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts: set[int] = set()
        while not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
            await asyncio.sleep(0.05)
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def drain_time(bootstrap: str, topic: str, n: int, timeout: float, start: dict[int, int]) -> tuple[float, int]:
    """Read `topic` from `start` (partition -> offset) until `n` messages arrived: (seconds first ->
    last arrival, count)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in start])
        for p, offset in start.items():
            consumer.seek(TopicPartition(topic, p), offset)
        count = 0
        first: float | None = None
        last = 0.0
        deadline = time.monotonic() + timeout
        while count < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            arrived = sum(len(records) for records in batch.values())
            if arrived:
                last = time.monotonic()
                first = first or last
                count += arrived
        if first is None or count < n:
            raise RuntimeError(f"only {count} of {n} arrived on {topic} within {timeout}s")
        return max(last - first, 1e-6), count
    finally:
        await consumer.stop()


async def kafka_path(bootstrap: str, n: int, work: Path, timeout: float, repeats: int = 3) -> dict[str, Any]:
    """Pass-through and classifier in turn, `repeats` times each on the same backlog (fresh groups
    and output topics each time): the machine's noise hits both sides alike, and the best of each
    side is its least disturbed run."""
    prefix = f"bc{uuid.uuid4().hex[:8]}."
    src = prefix + "feedback.received.v1"
    passthrough = prefix + "bench.passthrough.v1"
    classified = prefix + "feedback.classified.v1"
    await create_topics(bootstrap, [src, passthrough, classified])
    batch = events(n)
    msgs = [(customer_key("bench", e.payload.customer_id, e.event_id).encode(), serialize_event(e)) for e in batch]
    log(f"producing {n} feedback.received events with comments to {src}")
    await produce(bootstrap, src, msgs)
    children = Children()
    runs: dict[str, list[float]] = {"pt": [], "cl": []}
    try:
        for r in range(repeats):
            log(f"round {r + 1}/{repeats}: pass-through hop (raw aiokafka, no logic)")
            argv = [sys.executable, "-m", "bench.raw_hops", "hop", "--bootstrap", bootstrap, "--src", src]
            argv += ["--dst", passthrough, "--group", f"{prefix}pt{r}"]
            start = await end_offsets(bootstrap, passthrough)
            hop = children.spawn(f"passthrough-{r}", argv, work / f"pt{r}.log")
            seconds, _ = await drain_time(bootstrap, passthrough, n, timeout, start)
            children.stop([hop])
            runs["pt"].append(n / seconds)
            log(f"round {r + 1}/{repeats}: classifier (EventConsumer on KafkaBus)")
            argv = [sys.executable, "-m", "bench.classifier.worker", "--bootstrap", bootstrap, "--prefix", prefix]
            argv += ["--group", f"classifier-r{r}"]
            start = await end_offsets(bootstrap, classified)
            worker = children.spawn(f"classifier-{r}", argv, work / f"classifier{r}.log")
            seconds, _ = await drain_time(bootstrap, classified, n, timeout, start)
            children.stop([worker])
            runs["cl"].append(n / seconds)
    except BaseException:
        for child in children.all:
            log(f"--- {child.name} log ---\n{child.tail()}")
        raise
    finally:
        children.stop()
    pairs = sorted(c / p for p, c in zip(runs["pt"], runs["cl"], strict=True))
    log("publishing cost: one send each vs publish_many")
    cost = await publish_cost(bootstrap, min(n, 20000))
    return {
        "publish_cpu_us_per_event": cost,
        "passthrough_events_per_s": max(runs["pt"]),
        "classifier_events_per_s": max(runs["cl"]),
        "ratio": max(runs["cl"]) / max(runs["pt"]),
        "ratio_median_of_rounds": pairs[len(pairs) // 2],
        "rounds": runs,
    }


async def publish_cost(bootstrap: str, n: int, rounds: int = 2) -> dict[str, float]:
    """CPU per event of the consume loop's Publisher, the same events one `send` each and as one
    `publish_many` (`KafkaBus.send_many`) per batch of 500, serialization and acks included."""
    from npsloop_platform.bus.kafka import KafkaBus
    from npsloop_platform.consumer import Publisher

    bus = KafkaBus(bootstrap, topic_prefix=f"pc{uuid.uuid4().hex[:8]}.")
    await bus.start()
    try:
        await bus.wait_connected(60)
        await bus.ensure_topics(["feedback.received.v1"])
        keyed = [(e, customer_key("bench", e.payload.customer_id, e.event_id), ()) for e in events(n)]
        best: dict[str, float] = {}
        for _ in range(rounds):
            for mode in ("send_each_us", "publish_many_us"):
                t0 = time.process_time()
                for i in range(0, n, 500):
                    publisher = Publisher(bus)
                    if mode == "send_each_us":
                        for event, key, headers in keyed[i : i + 500]:
                            await publisher.publish(event, key, headers)
                    else:
                        await publisher.publish_many(keyed[i : i + 500])
                    await publisher.flush(asyncio.Event())
                us = (time.process_time() - t0) / n * 1e6
                best[mode] = min(best.get(mode, us), us)
        return best
    finally:
        await bus.stop()


def report(result: dict[str, Any]) -> None:
    m = result["model_time"]
    print(
        f"\nmodel time, one core: {m['comments_per_s']:,.0f} comments/s ({m['us_per_comment']:.0f} us/comment; "
        f"best of {result['rounds']} rounds, median round {m['comments_per_s_median_round']:,.0f}/s)"
    )
    for stage, us in m["stages_us"].items():
        print(f"  {stage:30s} {us:7.1f} us")
    if "kafka" in result:
        k = result["kafka"]
        print(
            f"\nreal Kafka, {result['events']} events: classifier {k['classifier_events_per_s']:,.0f} events/s, "
            f"pass-through {k['passthrough_events_per_s']:,.0f} events/s, ratio {k['ratio']:.2f} "
            f"(best of {len(k['rounds']['pt'])} runs each, in turn; median of the rounds' ratios "
            f"{k['ratio_median_of_rounds']:.2f})"
        )
        for side, name in (("pt", "pass-through"), ("cl", "classifier")):
            print(f"  {name:12s} runs: " + ", ".join(f"{x:,.0f}" for x in k["rounds"][side]) + " events/s")
        pc = k["publish_cpu_us_per_event"]
        print(
            f"  publishing, CPU per event: {pc['publish_many_us']:.1f} us as one publish_many per batch "
            f"(what the consume loop does), {pc['send_each_us']:.1f} us with one send each"
        )
    for name, t in result["targets"].items():
        print(f"  target {name}: {t['measured']:.2f} vs {t['target']} {'MET' if t['met'] else 'MISSED'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=10, help="passes over the comments for the model time")
    ap.add_argument("--bootstrap", help="an existing broker (default: start one of our own)")
    ap.add_argument("--skip-kafka", action="store_true")
    ap.add_argument("--repeats", type=int, default=3, help="pass-through and classifier runs, in turn")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--result-file", type=Path)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    result: dict[str, Any] = {"events": args.events, "rounds": args.rounds}
    result["model_time"] = model_time(events(len(comments())), args.rounds)
    if not args.skip_kafka:
        from npsloop_platform.testing.infra import kafka_broker

        with work_dir(args.keep) as work:
            if args.bootstrap:
                result["kafka"] = asyncio.run(kafka_path(args.bootstrap, args.events, work, args.timeout, args.repeats))
            else:
                port = free_port()
                log(f"starting Kafka on 127.0.0.1:{port}")
                with kafka_broker(work / "kafka", port) as bootstrap:
                    result["kafka"] = asyncio.run(kafka_path(bootstrap, args.events, work, args.timeout, args.repeats))
    targets = {"model_comments_per_s_one_core": (result["model_time"]["comments_per_s"], 5000)}
    if "kafka" in result:
        targets["kafka_ratio_vs_passthrough"] = (result["kafka"]["ratio"], 0.5)
    result["targets"] = {k: {"measured": v, "target": t, "met": v >= t} for k, (v, t) in targets.items()}
    report(result)
    path = args.result_file or RESULTS_DIR / f"classifier-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"\nresult: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
