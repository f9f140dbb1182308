"""The ceiling: the same payloads through three raw aiokafka consume-and-produce hops, no logic.

    topic A -> hop1 -> B -> hop2 -> C -> hop3 -> D

Each hop is its own process (`python -m bench.raw_hops hop ...`) configured like the services'
`EventConsumer` on `KafkaBus`: its own consumer group, manual commits after every produced message
of a batch was acked, read_committed, batches of up to 500 polled every 200 ms, and an idempotent
acks=all producer with linger 2 ms. `run_raw()` (used by bench.e2e) produces to A with the same
producer settings and `concurrency` sends in flight (like the HTTP load), and reads D.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

SEQ_HEADER = "bench-seq"
LINGER_MS = 2  # KafkaBus default
MAX_BATCH = 500  # EventConsumer default
POLL_MS = 200  # EventConsumer default


def producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=LINGER_MS,
        request_timeout_ms=30_000,
    )


async def create_topics(bootstrap: str, names: Sequence[str], partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            await admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1) for n in missing])
        for _ in range(100):
            if set(names) <= set(await admin.list_topics()):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topics not visible after creation: {sorted(set(names))}")
    finally:
        await admin.close()


async def topic_message_counts(bootstrap: str, substring: str) -> dict[str, int]:
    """Messages per topic (sum of end offsets) for every topic whose name contains `substring`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if substring in t]
    finally:
        await admin.close()
    if not topics:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        out: dict[str, int] = {}
        for topic in topics:
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in parts]
            ends = await consumer.end_offsets(tps) if tps else {}
            out[topic] = int(sum(ends.values()))
        return out
    finally:
        await consumer.stop()


# ------------------------------------------------------------------------------------------ hop --


async def hop(bootstrap: str, src: str, dst: str, group: str, ready_file: Path | None) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    consumer = AIOKafkaConsumer(
        src,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_interval_ms=300_000,
    )
    prod = producer(bootstrap)
    await prod.start()
    await consumer.start()
    try:
        announced = False
        while not stopping.is_set():
            if os.getppid() == 1:  # orphaned: the benchmark died
                break
            batches = await consumer.getmany(timeout_ms=POLL_MS, max_records=MAX_BATCH)
            if not announced and consumer.assignment():
                announced = True
                if ready_file is not None:
                    await asyncio.to_thread(ready_file.write_text, json.dumps({"pid": os.getpid(), "group": group}))
            if not batches:
                continue
            futures = []
            offsets: dict[TopicPartition, int] = {}
            for tp, records in batches.items():
                for r in records:
                    futures.append(await prod.send(dst, r.value, key=r.key, headers=list(r.headers or ())))
                offsets[tp] = records[-1].offset + 1
            await asyncio.gather(*futures)  # every output acked before the input is committed
            await consumer.commit(offsets)
    finally:
        await consumer.stop()
        await prod.stop()


# ------------------------------------------------------------------------------- driver (bench) --


@dataclass
class RawRun:
    sent: int = 0
    first_send_start: float | None = None
    last_ack: float | None = None
    acked_at: dict[int, float] = field(default_factory=dict)
    arrived_at: dict[int, float] = field(default_factory=dict)
    duplicates: int = 0
    send_errors: int = 0


async def read_topic_until(
    bootstrap: str,
    topic: str,
    run: RawRun,
    expected: int,
    stall_s: float,
    deadline: float,
    done_producing: asyncio.Event,
) -> None:
    """Read every partition of `topic` from the start (no group) and time each arrival."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    try:
        parts: set[int] = set()
        for _ in range(100):
            parts = consumer.partitions_for_topic(topic) or set()
            if parts:
                break
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        last_progress = time.monotonic()
        while len(run.arrived_at) < expected:
            now = time.monotonic()
            if now > deadline or (done_producing.is_set() and now - last_progress > stall_s):
                return
            batches = await consumer.getmany(timeout_ms=100, max_records=2000)
            at = time.time()
            for records in batches.values():
                for r in records:
                    seq = next((int(v) for k, v in (r.headers or ()) if k == SEQ_HEADER), None)
                    if seq is None:
                        continue
                    if seq in run.arrived_at:
                        run.duplicates += 1
                    else:
                        run.arrived_at[seq] = at
                    last_progress = time.monotonic()
    finally:
        await consumer.stop()


async def produce_all(
    bootstrap: str,
    topic: str,
    messages: Sequence[tuple[bytes, bytes]],
    run: RawRun,
    concurrency: int,
    rate: float | None = None,
) -> None:
    """`concurrency` sends in flight, each awaiting its ack; `rate`: at most that many starts per
    second, evenly spaced (like bench.e2e's HTTP load)."""
    prod = producer(bootstrap)
    await prod.start()
    try:
        it = iter(enumerate(messages))
        t_begin = time.monotonic()

        async def worker() -> None:
            for seq, (key, value) in it:
                if rate:
                    delay = t_begin + seq / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                start = time.time()
                if run.first_send_start is None:
                    run.first_send_start = start
                try:
                    fut = await prod.send(topic, value, key=key, headers=[(SEQ_HEADER, str(seq).encode())])
                    await fut
                except Exception:
                    run.send_errors += 1
                    continue
                at = time.time()
                run.acked_at[seq] = at
                run.last_ack = at
                run.sent += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await prod.stop()


async def run_raw(
    bootstrap: str,
    prefix: str,
    messages: Sequence[tuple[bytes, bytes]],
    *,
    concurrency: int,
    workdir: Path,
    deadline: float,
    spawn: object,
    stall_s: float = 30.0,
    log: object = print,
    rate: float | None = None,
) -> RawRun:
    """Start the three hop processes via `spawn(name, argv, log_path)` (returns a handle with
    `.alive()` and `.stop()`), produce `messages` (key, value) to A and time their arrival on D."""
    names = [f"{prefix}raw.{c}" for c in "ABCD"]
    await create_topics(bootstrap, names)
    import sys

    hops = []
    ready_files = []
    for i in range(3):
        ready = workdir / f"hop{i + 1}.ready"
        ready_files.append(ready)
        argv = [
            sys.executable,
            "-m",
            "bench.raw_hops",
            "hop",
            "--bootstrap",
            bootstrap,
            "--src",
            names[i],
            "--dst",
            names[i + 1],
            "--group",
            f"{prefix}raw-hop{i + 1}",
            "--ready-file",
            str(ready),
        ]
        hops.append(spawn(f"raw-hop{i + 1}", argv, workdir / f"hop{i + 1}.log"))  # type: ignore[operator]
    try:
        t0 = time.monotonic()
        while not all(f.exists() for f in ready_files):
            dead = [h for h in hops if not h.alive()]
            if dead:
                raise RuntimeError(f"raw hop process exited early: {dead[0].name} (see {dead[0].log_path})")
            if time.monotonic() - t0 > 60 or time.monotonic() > deadline:
                raise RuntimeError("raw hops did not get partition assignments within 60s")
            await asyncio.sleep(0.1)
        log(f"raw: 3 hops ready in {time.monotonic() - t0:.1f}s; producing {len(messages)} messages")  # type: ignore[operator]
        run = RawRun()
        done = asyncio.Event()
        reader = asyncio.create_task(read_topic_until(bootstrap, names[3], run, len(messages), stall_s, deadline, done))
        await asyncio.sleep(0.5)  # let the reader get its metadata and seek first
        try:
            await produce_all(bootstrap, names[0], messages, run, concurrency, rate)
        finally:
            done.set()
        await reader
        return run
    finally:
        for h in hops:
            h.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("hop", help="one raw consume-and-produce hop")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--dst", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--ready-file", type=Path)
    args = parser.parse_args(argv)
    asyncio.run(hop(args.bootstrap, args.src, args.dst, args.group, args.ready_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
