"""The sink puts a record in the partition aiokafka's ``send()`` (and Java's producer) would.

``partition_for`` is checked against aiokafka's default partitioner for many keys and partition
counts, and against murmur2 values from Kafka's own Java tests (``UtilsTest.testMurmur2``), so a
consumer keyed by symbol sees the same partition whichever client wrote. The real broker checks
the same in ``tests/integration/test_kafka_batches.py``.
"""

from __future__ import annotations

import random
from collections import deque

import pytest
from aiokafka.partitioner import DefaultPartitioner

from gateway.adapters.kafka_batches import Buffer, Lanes, partition_for
from gateway.records.topics import ProducerRecord

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
    assert not lanes.knows("t")
    lanes.learn("t", [0, 1, 2])
    first = lanes.lane("t", b"BTCUSDT")
    assert first.partition == partition_for(b"BTCUSDT", [0, 1, 2])
    assert lanes.lane("t", b"BTCUSDT") is first
    lanes.learn("t", list(range(7)))  # more partitions: keys move, as with send()
    moved = lanes.lane("t", b"BTCUSDT")
    assert moved.partition == partition_for(b"BTCUSDT", list(range(7)))
    assert len(lanes.all()) == len({first.partition, moved.partition})


class Builder:
    """aiokafka's BatchBuilder as far as lanes use it: full at ``capacity`` records."""

    def __init__(self, capacity: int = 2) -> None:
        self.values: list[bytes] = []
        self.capacity = capacity

    def append(self, *, value: bytes, **_: object) -> object | None:
        if len(self.values) >= self.capacity:
            return None
        self.values.append(value)
        return object()


def rec(topic: str, key: bytes, value: bytes) -> ProducerRecord:
    return ProducerRecord(topic, key, value, [])


def test_gather_stops_at_a_topic_whose_partitions_are_unknown() -> None:
    lanes = Lanes()
    lanes.learn("a", [0])
    buffer: Buffer = deque([(rec("a", b"K", b"1"), 1), (rec("b", b"K", b"2"), 2)])
    assert lanes.gather(buffer, 100, Builder, due_s=5.0) == "b"
    assert [r.value for r, _ in buffer] == [b"2"]  # still first, until "b" is learnt
    lanes.learn("b", [0, 1])
    assert lanes.gather(buffer, 100, Builder, due_s=5.0) is None and not buffer


def test_ready_takes_one_batch_per_idle_lane_full_ones_first_and_lingers_the_last() -> None:
    lanes = Lanes()
    lanes.learn("a", [0])
    buffer: Buffer = deque((rec("a", b"K", b"%d" % i), i) for i in range(3))
    lanes.gather(buffer, 100, Builder, due_s=5.0)  # batches [0, 1] (full) and [2]
    ready, due = lanes.ready(now_s=1.0, linger=True)
    assert [b.records[0].value for _, b in ready] == [b"0"] and due is None
    lane, batch = ready[0]
    lane.busy = True  # with the producer: the next one waits
    assert lanes.ready(now_s=9.0, linger=False) == ([], None)
    lane.busy = False
    assert lanes.ready(now_s=1.0, linger=True) == ([], 5.0)  # the last batch may still grow
    assert [b.times for _, b in lanes.ready(now_s=5.5, linger=True)[0]] == [[2]]
    lanes.put_back(lane, batch)  # not handed over after all: first again
    assert lanes.ready(now_s=5.5, linger=True)[0] == [(lane, batch)]
    assert not lanes.waiting
