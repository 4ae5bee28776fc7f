"""The sink puts a record in the partition aiokafka's ``send()`` (and Java's producer) would.

``partition_for`` is checked against aiokafka's default partitioner for many keys and partition
counts, and against murmur2 values from Kafka's own Java tests (``UtilsTest.testMurmur2``), so a
consumer keyed by symbol sees the same partition whichever client wrote. The real broker checks
the same in ``tests/integration/test_kafka_batches.py``.
"""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner

from gateway.adapters.kafka_batches import Lanes, partition_for

JAVA_MURMUR2 = {  # Kafka's clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_the_partition_is_aiokafkas_for_many_keys_and_partition_counts() -> None:
    rng = random.Random(16)
    partitioner = DefaultPartitioner()
    keys = [rng.randbytes(rng.randrange(0, 40)) for _ in range(3000)]
    keys += [f"{base}USDT".encode() for base in ("BTC", "ETH", "SOL", "1000PEPE", "XRP")]
    for count in (1, 2, 3, 6, 7, 12, 50):
        partitions = list(range(count))
        for key in keys:
            assert partition_for(key, partitions) == partitioner(key, partitions, partitions)


@pytest.mark.parametrize(("key", "java_hash"), JAVA_MURMUR2.items())
def test_the_partition_is_javas_positive_murmur2_modulo_the_count(
    key: bytes, java_hash: int
) -> None:
    for count in (1, 3, 6, 7, 12):
        assert partition_for(key, list(range(count))) == (java_hash & 0x7FFFFFFF) % count


def test_a_keyless_record_goes_to_any_of_the_partitions() -> None:
    chosen = {partition_for(None, [0, 1, 2]) for _ in range(200)}
    assert chosen <= {0, 1, 2} and len(chosen) > 1


def test_lanes_keep_one_lane_per_partition_and_forget_keys_when_partitions_change() -> None:
    lanes = Lanes()
    assert lanes.keyed("t") is None  # partitions unknown: learn them first
    by_key = lanes.learn("t", [0, 1, 2])
    first = lanes.lane("t", b"BTCUSDT")
    assert by_key[b"BTCUSDT"] is first and first.partition == partition_for(b"BTCUSDT", [0, 1, 2])
    assert lanes.learn("t", [0, 1, 2]) is by_key  # unchanged: the cache stays
    assert lanes.learn("t", list(range(7))) == {}  # more partitions: keys move, as with send()
    moved = lanes.lane("t", b"BTCUSDT")
    assert moved.partition == partition_for(b"BTCUSDT", list(range(7)))
    assert len({id(lane) for lane in lanes.all()}) == len({first.partition, moved.partition})
