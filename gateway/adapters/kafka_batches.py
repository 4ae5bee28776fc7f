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


NewBuilder = Callable[[], BatchBuilder]


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
        new_builder: NewBuilder,
        due_s: float,
    ) -> None:
        """Add the record to the last batch, or to a new one due at ``due_s`` when it is full."""
        batches = self.batches
        if not batches or not batches[-1].append(record, received_ns):
            batch = Batch(new_builder(), self.topic, self.partition, due_s=due_s)
            batch.append(record, received_ns)
            batches.append(batch)


Buffer = deque[tuple[ProducerRecord, int]]
"""Records accepted by the sink, with the monotonic ns each was received."""


class Lanes:
    """Every partition's lane, and which of them have batches to hand over.

    The lane of a record is found from its key through a per-topic cache, so the partitioner
    runs once per key; a topic's partitions come from the producer's metadata (:meth:`learn`).
    """

    def __init__(self) -> None:
        self._partitions: dict[str, list[int]] = {}
        self._by_key: dict[str, dict[bytes, Lane]] = {}
        self._lanes: dict[tuple[str, int], Lane] = {}
        self._waiting: dict[Lane, None] = {}  # lanes with batches not handed over, in order

    def topics(self) -> list[str]:
        return list(self._partitions)

    def learn(self, topic: str, partitions: list[int]) -> None:
        """Take the topic's partitions from the producer's metadata; a changed count moves keys,
        as it does for ``send()``."""
        if self._partitions.get(topic) != partitions:
            self._partitions[topic] = partitions
            self._by_key[topic] = {}

    def gather(
        self, buffer: Buffer, limit: int, new_builder: NewBuilder, due_s: float
    ) -> str | None:
        """Move up to ``limit`` records from ``buffer`` to their lanes' batches (a new batch is
        due at ``due_s``). Stops at a record whose topic's partitions are unknown and returns
        that topic: the record stays first in the buffer until they are learnt."""
        by_topic, waiting = self._by_key, self._waiting
        for _ in range(min(len(buffer), limit)):
            record, received_ns = item = buffer.popleft()
            by_key = by_topic.get(record.topic)
            if by_key is None:
                buffer.appendleft(item)
                return record.topic
            lane = by_key.get(record.key) if record.key is not None else None
            if lane is None:
                lane = self.lane(record.topic, record.key)
            lane.append(record, received_ns, new_builder, due_s)
            waiting[lane] = None
        return None

    def lane(self, topic: str, key: bytes | None) -> Lane:
        """The lane of a record of a learnt topic (a cache miss, or a keyless record)."""
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

    def knows(self, topic: str) -> bool:
        return topic in self._partitions

    @property
    def waiting(self) -> bool:
        return bool(self._waiting)

    def ready(self, now_s: float, linger: bool) -> tuple[list[tuple[Lane, Batch]], float | None]:
        """Take the oldest batch of every lane that has none with the producer, unless it is
        the lane's last and, with ``linger``, not yet due; also returns when the first of those
        left lingering is due (None: none is)."""
        ready, next_due_s = [], None
        for lane in list(self._waiting):
            if lane.busy:
                continue
            batches = lane.batches
            if linger and len(batches) == 1 and (due_s := batches[0].due_s) > now_s:
                next_due_s = due_s if next_due_s is None else min(next_due_s, due_s)
                continue
            ready.append((lane, batches.popleft()))
            if not batches:
                del self._waiting[lane]
        return ready, next_due_s

    def put_back(self, lane: Lane, batch: Batch) -> None:
        """A batch taken by :meth:`ready` but not handed over: first again in its lane."""
        lane.batches.appendleft(batch)
        self._waiting[lane] = None

    def drop(self) -> None:
        """Empty every lane: the sink failed for good."""
        for lane in self._waiting:
            lane.batches.clear()
        self._waiting.clear()

    def all(self) -> list[Lane]:
        return list(self._lanes.values())


MAX_CACHED_KEYS = 100_000
"""Keys are symbols (a few thousand); the bound only keeps an odd producer's memory in check."""
