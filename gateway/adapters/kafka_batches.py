"""Records gathered into aiokafka's record batches per topic partition, ahead of the producer.

aiokafka's ``send()`` costs a coroutine, a size estimate, a partitioner call, a future and a
done-callback per record. The sink instead appends each record straight to a
:class:`~aiokafka.producer.message_accumulator.BatchBuilder` of its partition and hands whole
batches over with ``send_batch()``, one future and one callback per batch.

The partition is the one ``send()`` would choose: aiokafka's default partitioner (murmur2 of the
key, as Java's) over the topic's partitions as the producer's metadata lists them. A keyless
record goes to a random partition, as with ``send()``.

A partition's batches wait here, in order, while the previous one is with the producer: the
idempotent producer sends one batch per partition at a time anyway, and a builder handed over
cannot safely take more records (the sender numbers a batch when it takes it, before it closes it).
They also linger here (``kafka.linger_ms`` from their first record, unless full): aiokafka sends
a closed batch at once.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from gateway.records.topics import ProducerRecord

_partitioner = DefaultPartitioner()


def partition_for(key: bytes | None, partitions: list[int]) -> int:
    """The partition aiokafka's ``send()`` picks for ``key`` among ``partitions`` (listed as
    the producer's metadata gives them, which is how ``send()`` passes them to its partitioner)."""
    if key is None:
        return random.choice(partitions)
    return int(_partitioner(key, partitions, partitions))


class Batch:
    """One record batch and what it carries, for the delivery accounting."""

    __slots__ = ("alone", "builder", "due_s", "partition", "records", "times", "topic")

    def __init__(
        self,
        builder: BatchBuilder,
        topic: str,
        partition: int,
        alone: bool = False,
        due_s: float = 0.0,
    ) -> None:
        self.builder = builder
        self.due_s = due_s
        """When it has lingered enough to go even if not full (event-loop time)."""
        self.topic = topic
        self.partition = partition
        self.alone = alone
        """Sent by itself to learn whether the broker refuses this very record."""
        self.records: list[ProducerRecord] = []
        self.times: list[int] = []  # monotonic ns each record was received

    def append(self, record: ProducerRecord, received_ns: int) -> bool:
        """Add the record; False when the batch is full (an empty batch takes any record)."""
        if (
            self.builder.append(
                timestamp=record.timestamp_ms,
                key=record.key,
                value=record.value,
                headers=record.headers,
            )
            is None
        ):
            return False
        self.records.append(record)
        self.times.append(received_ns)
        return True


class Lane:
    """One topic partition: its batches not yet handed to the producer, oldest first."""

    __slots__ = ("batches", "busy", "partition", "topic")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.batches: deque[Batch] = deque()
        self.busy = False
        """A batch of this partition is with the producer, unacknowledged."""

    def append(
        self,
        record: ProducerRecord,
        received_ns: int,
        new_builder: Callable[[], BatchBuilder],
        due_s: float,
    ) -> None:
        """Add the record to the last batch, or to a new one due at ``due_s`` when it is full."""
        batches = self.batches
        if not batches or not batches[-1].append(record, received_ns):
            batch = Batch(new_builder(), self.topic, self.partition, due_s=due_s)
            batch.append(record, received_ns)
            batches.append(batch)


class Lanes:
    """The lane of every record: per topic, its key's partition computed once."""

    def __init__(self) -> None:
        self._partitions: dict[str, list[int]] = {}
        self._by_key: dict[str, dict[bytes, Lane]] = {}
        self._lanes: dict[tuple[str, int], Lane] = {}

    def topics(self) -> list[str]:
        return list(self._partitions)

    def keyed(self, topic: str) -> dict[bytes, Lane] | None:
        """The key → lane cache of a topic whose partitions are known (None: learn them first)."""
        return self._by_key.get(topic)

    def learn(self, topic: str, partitions: list[int]) -> dict[bytes, Lane]:
        """Take the topic's partitions from the producer's metadata; a changed count moves keys,
        as it does for ``send()``."""
        if self._partitions.get(topic) != partitions:
            self._partitions[topic] = partitions
            self._by_key[topic] = {}
        return self._by_key[topic]

    def lane(self, topic: str, key: bytes | None) -> Lane:
        """The lane of a record of a learned topic (a cache miss, or a keyless record)."""
        partition = partition_for(key, self._partitions[topic])
        lane = self._lanes.get((topic, partition))
        if lane is None:
            lane = self._lanes[(topic, partition)] = Lane(topic, partition)
        if key is not None:
            by_key = self._by_key[topic]
            if len(by_key) >= MAX_CACHED_KEYS:
                by_key.clear()
            by_key[key] = lane
        return lane

    def all(self) -> list[Lane]:
        return list(self._lanes.values())


MAX_CACHED_KEYS = 100_000
"""Keys are symbols (a few thousand); the bound only keeps an odd producer's memory in check."""
