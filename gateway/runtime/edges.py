"""What a worker asks of Kafka and Binance's REST API, as small Protocols with production defaults.

:class:`~gateway.runtime.worker.Gateway` takes these as constructor arguments, so a test passes
an in-memory sink, control log and group and runs the whole worker without a broker
(``tests/unit/shells/test_worker_wiring.py``); production passes nothing and gets
:class:`KafkaClients` and :class:`~gateway.adapters.binance_rest.BinanceRestClient`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from gateway.adapters.binance_rest import BinanceRestClient
from gateway.adapters.kafka import (
    AckListener,
    DeadLetterRoute,
    Fence,
    KafkaSink,
    SinkStats,
    ensure_topics,
)
from gateway.adapters.kafka_group import (
    ControlLog,
    ShardAssignor,
    ShardGroup,
    ensure_control_topic,
)
from gateway.adapters.kafka_tail import Decoder, LastIdReader
from gateway.binance.markets import Market
from gateway.coordination.fencing import Lease
from gateway.records.topics import ProducerRecord, TopicNamer
from gateway.runtime.ownership import ClaimLog
from gateway.settings import CoordinationSettings, KafkaSettings
from gateway.topic_catalogue import TopicSpec


class Sink(Protocol):
    """The worker's Kafka sink (:class:`KafkaSink`): records in, acknowledgements counted."""

    stats: SinkStats
    kafka_unavailable: bool

    @property
    def queue_depth(self) -> int: ...

    async def send(self, record: ProducerRecord, received_ns: int | None = None) -> None: ...

    async def flush(self) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def route_refusals(self, dead_letter: DeadLetterRoute) -> None: ...

    def fence_with(self, fence: Fence) -> None: ...


class LastIds(Protocol):
    """Kafka's last trade ids per symbol (:class:`LastIdReader`), where a shard resumes."""

    async def last_ids(
        self, market: Market, symbols: Collection[str]
    ) -> dict[tuple[str, str], int]: ...


class Control(ClaimLog, Protocol):
    """The control topic's claims (:class:`ControlLog`), followed from start to stop."""

    @property
    def partitions(self) -> list[int]: ...

    async def stop(self) -> None: ...


class Group(Protocol):
    """The worker's group membership (:class:`ShardGroup`)."""

    assigned: frozenset[int] | None

    @property
    def poller(self) -> asyncio.Task[None] | None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Kafka(Protocol):
    """Every Kafka client a worker opens."""

    def sink(self, on_ack: AckListener, on_error: Callable[[str], None]) -> Sink: ...

    async def ensure_topics(self, topics: Iterable[TopicSpec]) -> None: ...

    def last_ids(
        self, namer: TopicNamer, decoder: Decoder
    ) -> AbstractAsyncContextManager[LastIds]: ...

    async def control(self, spec: TopicSpec, worker: str, *, create: bool) -> Control:
        """The control topic (created or grown to ``spec``), followed until ``stop()``."""
        ...

    def group(
        self,
        coordination: CoordinationSettings,
        topic: str,
        group_id: str,
        assignor: ShardAssignor,
        on_change: Callable[[frozenset[int]], None],
        lease: Lease | None,
    ) -> Group: ...


class RestClients(Protocol):
    """Opens a market's REST client (one per market: Binance counts weight per IP)."""

    def __call__(self, url: str, market: Market, /) -> BinanceRestClient: ...


class KafkaClients:
    """The production :class:`Kafka`: aiokafka clients against ``settings``' brokers."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings

    def sink(self, on_ack: AckListener, on_error: Callable[[str], None]) -> KafkaSink:
        return KafkaSink(self._settings, on_ack=on_ack, on_error=on_error)

    async def ensure_topics(self, topics: Iterable[TopicSpec]) -> None:
        await ensure_topics(self._settings, topics)

    def last_ids(self, namer: TopicNamer, decoder: Decoder) -> LastIdReader:
        return LastIdReader(self._settings, namer, decoder)

    async def control(self, spec: TopicSpec, worker: str, *, create: bool) -> ControlLog:
        partitions = await ensure_control_topic(self._settings, spec, create=create)
        control = ControlLog(self._settings, spec.name, worker)
        await control.start(partitions)
        return control

    def group(
        self,
        coordination: CoordinationSettings,
        topic: str,
        group_id: str,
        assignor: ShardAssignor,
        on_change: Callable[[frozenset[int]], None],
        lease: Lease | None,
    ) -> ShardGroup:
        return ShardGroup(
            self._settings, coordination, topic, group_id, assignor, on_change, lease=lease
        )
