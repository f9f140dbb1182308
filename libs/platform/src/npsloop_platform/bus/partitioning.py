"""Kafka's default partition for a key, as the Java client and aiokafka compute it, but faster.

aiokafka's `murmur2` is pure Python and reads the key a byte at a time; with the partition lists
it builds per call, choosing partitions was ~13 us of a batch item's ~65 in ingest. This one reads
four bytes at a time with `struct` and gives the same hash (`test_partitioning.py` checks it
against aiokafka's on random keys), so a key lands where every other Kafka client puts it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


@lru_cache(maxsize=256)
def _words(count: int) -> struct.Struct:
    return struct.Struct(f"<{count}I")


def murmur2(data: bytes) -> int:
    """MurmurHash2 of `data` as Kafka's `Utils.murmur2` (seed 0x9747b28c), as an unsigned int."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    count = length >> 2
    if count:
        for k in _words(count).unpack_from(data):
            k = (k * _M) & _MASK
            k = ((k ^ (k >> 24)) * _M) & _MASK
            h = ((h * _M) & _MASK) ^ k
    tail, base = length & 3, length & ~3
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail:
        h = ((h ^ data[base]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_for(key: bytes, partitions: Sequence[int]) -> int:
    """The default partitioner's choice for a keyed message among the topic's sorted partitions."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
