"""In-memory stand-ins for what a worker asks of Kafka (``gateway.runtime.edges``): a control log
whose claims are decided by the core's own :class:`ShardClaims`, an acknowledging sink, a group
that assigns every partition, and resume reads that find nothing. The Kafka-backed versions are
proven by the integration tier; these let the fast tier run the worker's wiring without a broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable
from types import TracebackType
from typing import Self

from gateway.adapters.kafka import AckListener, DeadLetterRoute, Fence, SinkStats
from gateway.adapters.kafka_group import ShardAssignor
from gateway.adapters.kafka_tail import Decoder
from gateway.binance.markets import Market
from gateway.coordination.control import ShardClaims
from gateway.coordination.fencing import Lease
from gateway.records.topics import ProducerRecord, TopicNamer
from gateway.settings import CoordinationSettings
from gateway.topic_catalogue import TopicSpec


class SharedLog:
    """One control topic: per partition, the claims read so far and the next offset."""

    def __init__(self, partitions: int) -> None:
        self.claims = {p: ShardClaims() for p in range(partitions)}
        self.ends = dict.fromkeys(range(partitions), 0)
        self.changed = asyncio.Condition()
        self.writes: list[tuple[int, str, str, bool]] = []

    async def write(self, partition: int, shard: str, worker: str, claimed: bool) -> int:
        async with self.changed:
            offset = self.ends[partition]
            self.ends[partition] += 1
            self.claims[partition].apply(worker, offset, claimed)
            self.writes.append((partition, shard, worker, claimed))
            self.changed.notify_all()
        return offset


class MemoryControl:
    """A ``ControlLog`` of one worker over a :class:`SharedLog`."""

    def __init__(self, log: SharedLog, worker: str) -> None:
        self.log = log
        self.worker = worker
        self.caught_up_calls: list[list[int]] = []
        self.stopped = False

    @property
    def partitions(self) -> list[int]:
        return sorted(self.log.claims)

    async def stop(self) -> None:
        self.stopped = True

    def claimants(self, partition: int) -> list[str]:
        return self.log.claims[partition].claimants()

    def holder(self, partition: int) -> str | None:
        return self.log.claims[partition].holder

    async def caught_up(self, partitions: Iterable[int]) -> None:
        self.caught_up_calls.append(list(partitions))  # in memory, every write is read at once

    async def claim(self, partition: int, shard: str) -> int:
        return await self.log.write(partition, shard, self.worker, True)

    async def release(self, partition: int, shard: str, worker: str | None = None) -> None:
        await self.log.write(partition, shard, worker or self.worker, False)

    async def wait_until_holder(
        self, partition: int, after_offset: int, on_wait: Callable[[list[str]], None]
    ) -> None:
        async with self.log.changed:
            while True:
                if self.log.ends[partition] > after_offset:
                    if self.log.claims[partition].holder == self.worker:
                        return
                    on_wait(self.log.claims[partition].claimants())
                await self.log.changed.wait()


class AckingSink:
    """Acknowledges every record as it is sent, as a healthy broker would by the next flush."""

    def __init__(self, on_ack: AckListener, on_error: Callable[[str], None]) -> None:
        self._on_ack = on_ack
        self.on_error = on_error
        self.stats = SinkStats()
        self.kafka_unavailable = False
        self.sent: list[ProducerRecord] = []
        self.events: list[str] = []
        self.dead_letter: DeadLetterRoute | None = None
        self.fence: Fence | None = None

    @property
    def queue_depth(self) -> int:
        return 0

    async def send(self, record: ProducerRecord, received_ns: int | None = None) -> None:
        self.stats.enqueued += 1
        self.sent.append(record)
        self.stats.acked += 1
        self._on_ack(record, 1_000)

    async def flush(self) -> None:
        self.events.append("flush")

    async def start(self) -> None:
        self.events.append("start")

    async def stop(self) -> None:
        self.events.append("stop")

    def route_refusals(self, dead_letter: DeadLetterRoute) -> None:
        self.dead_letter = dead_letter

    def fence_with(self, fence: Fence) -> None:
        self.fence = fence


class EmptyTail:
    """Kafka's last trade ids when nothing was written yet: none."""

    def __init__(self) -> None:
        self.calls: list[tuple[Market, tuple[str, ...]]] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def last_ids(
        self, market: Market, symbols: Collection[str]
    ) -> dict[tuple[str, str], int]:
        self.calls.append((market, tuple(symbols)))
        return {}


class WholeGroup:
    """A group of one: each start assigns this worker every partition of the control topic,
    after asking the assignor for the member metadata the leader would read."""

    def __init__(
        self,
        partitions: int,
        assignor: ShardAssignor,
        on_change: Callable[[frozenset[int]], None],
        fail: BaseException | None = None,
    ) -> None:
        self._partitions = partitions
        self.assignor = assignor
        self._on_change = on_change
        self._fail = fail
        self.assigned: frozenset[int] | None = None
        self.metadata: bytes = b""
        self._poller: asyncio.Task[None] | None = None
        self.stopped = False

    @property
    def poller(self) -> asyncio.Task[None] | None:
        return self._poller

    async def start(self) -> None:
        self.metadata = self.assignor.metadata(["control"]).user_data
        self.assigned = frozenset(range(self._partitions))
        self._on_change(self.assigned)
        self._poller = asyncio.create_task(self._poll(), name="group-membership")

    async def _poll(self) -> None:
        await asyncio.sleep(0.2)
        if self._fail is not None:
            raise self._fail
        await asyncio.Event().wait()

    async def stop(self) -> None:
        self.stopped = True
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)


class MemoryKafka:
    """Every Kafka client a worker opens, in memory; keeps what it made for the test to read."""

    def __init__(
        self, log: SharedLog | None = None, group_fails: BaseException | None = None
    ) -> None:
        self.log = log
        self.group_fails = group_fails
        self.sinks: list[AckingSink] = []
        self.ensured: list[str] = []
        self.tail = EmptyTail()
        self.controls: list[MemoryControl] = []
        self.control_specs: list[TopicSpec] = []
        self.groups: list[WholeGroup] = []
        self.leases: list[Lease | None] = []

    def sink(self, on_ack: AckListener, on_error: Callable[[str], None]) -> AckingSink:
        self.sinks.append(AckingSink(on_ack, on_error))
        return self.sinks[-1]

    async def ensure_topics(self, topics: Iterable[TopicSpec]) -> None:
        self.ensured.extend(t.name for t in topics)

    def last_ids(self, namer: TopicNamer, decoder: Decoder) -> EmptyTail:
        return self.tail

    async def control(self, spec: TopicSpec, worker: str, *, create: bool) -> MemoryControl:
        assert self.log is not None, "a coordinated worker needs a control log"
        self.control_specs.append(spec)
        self.controls.append(MemoryControl(self.log, worker))
        return self.controls[-1]

    def group(
        self,
        coordination: CoordinationSettings,
        topic: str,
        group_id: str,
        assignor: ShardAssignor,
        on_change: Callable[[frozenset[int]], None],
        lease: Lease | None,
    ) -> WholeGroup:
        assert self.log is not None
        self.leases.append(lease)
        self.groups.append(WholeGroup(len(self.log.claims), assignor, on_change, self.group_fails))
        return self.groups[-1]
