"""The fast partition choice of KafkaBus.send_many gives Kafka's own: the same murmur2 as aiokafka
(a port of the Java client's), so a key lands where every other client puts it."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from npsloop_platform.bus.partitioning import murmur2, partition_for


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300))
def test_murmur2_is_aiokafkas_for_any_bytes(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


def test_known_java_client_values_and_every_tail_length() -> None:
    # From the Java client's UtilsTest.testMurmur2 (signed ints there).
    known = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536}
    for key, java in known.items():
        assert murmur2(key) == java & 0xFFFFFFFF
    rng = random.Random(7)
    for length in range(0, 40):
        data = bytes(rng.randrange(256) for _ in range(length))
        assert murmur2(data) == aiokafka_murmur2(data), length


def test_partition_for_matches_the_default_partitioner() -> None:
    rng = random.Random(11)
    partitioner = DefaultPartitioner()
    for count in (1, 3, 7, 12):
        partitions = list(range(count))
        for _ in range(300):
            key = f"acme:c-{rng.randrange(10**9)}".encode()
            assert partition_for(key, partitions) == partitioner(key, partitions, partitions)
