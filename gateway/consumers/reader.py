"""Read the gateway's topics back as typed Python values: the consumer-side helper.

``RecordReader`` resolves each value's writer schema from its framing (registry id, looked up once
and cached, or single-object fingerprint from ``schemas/``) and yields :class:`ConsumedRecord`.
Decimals come back as :class:`~decimal.Decimal`, timestamps as aware UTC datetimes.

    async with RecordReader(["binance.spot.trade"], bootstrap_servers="127.0.0.1:9092",
                            registry_url="http://127.0.0.1:8081/apis/ccompat/v7") as reader:
        async for record in reader.records():
            print(record.key, record.value["price"])
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from gateway.adapters.decoder import ValueDecoder
from gateway.adapters.kafka import map_kafka_errors
from gateway.adapters.kafka_security import KafkaSecuritySettings, client_options
from gateway.adapters.registry import SchemaRegistryClient
from gateway.adapters.registry_settings import RegistrySettings
from gateway.records.avro import SchemaCatalog


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    headers: dict[str, str]
    value: dict[str, Any]


async def missing_topics(
    topics: Sequence[str], bootstrap_servers: str, security: KafkaSecuritySettings | None = None
) -> list[str]:
    """Which of ``topics`` Kafka does not have. Asked of the admin API, not through a consumer:
    a consumer of a missing topic waits for it forever (and may auto-create it)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        **client_options(security or KafkaSecuritySettings()),
    )
    with map_kafka_errors("listing topics", bootstrap_servers):
        await admin.start()
        try:
            existing = set(await admin.list_topics())
        finally:
            await admin.close()
    return [topic for topic in topics if topic not in existing]


class RecordReader:
    """Consumes topics from the beginning (or a group's offsets) and decodes every value."""

    def __init__(
        self,
        topics: Sequence[str],
        *,
        bootstrap_servers: str,
        registry_url: str | None = None,
        group_id: str | None = None,
        from_beginning: bool = True,
        catalog: SchemaCatalog | None = None,
        security: KafkaSecuritySettings | None = None,
        registry: RegistrySettings | None = None,
    ) -> None:
        self._topics = list(topics)
        self._bootstrap = bootstrap_servers
        # ``registry`` (login, TLS) wins over a bare ``registry_url``.
        self._registry = (
            SchemaRegistryClient.from_settings(registry)
            if registry is not None and registry.url is not None
            else SchemaRegistryClient(registry_url)
            if registry_url
            else None
        )
        self._decoder = ValueDecoder(catalog, self._registry)
        self._consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            auto_offset_reset="earliest" if from_beginning else "latest",
            enable_auto_commit=group_id is not None,
            **client_options(security or KafkaSecuritySettings()),
        )
        self._pending: collections.deque[Any] = collections.deque()  # aiokafka ConsumerRecords

    async def __aenter__(self) -> RecordReader:
        if self._registry is not None:
            await self._registry.__aenter__()
        try:
            with map_kafka_errors("starting the consumer", self._bootstrap):
                await self._consumer.start()
        except BaseException as exc:
            # A refused login or no broker: release the half-started consumer and the registry.
            await self._consumer.stop()
            if self._registry is not None:
                await self._registry.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._consumer.stop()
        if self._registry is not None:
            await self._registry.__aexit__(exc_type, exc, tb)

    async def records(self, idle_timeout_s: float | None = None) -> AsyncIterator[ConsumedRecord]:
        """Yield decoded records; stop after ``idle_timeout_s`` without any, if given.

        Records fetched but not yet yielded stay with the reader: a caller that stops iterating
        mid-batch (``read_all`` once it has ``expected``) gets them from its next ``records()``.
        """
        while True:
            if not self._pending:
                batches = await self._consumer.getmany(timeout_ms=500)
                if not batches:
                    if idle_timeout_s is not None:
                        idle_timeout_s -= 0.5
                        if idle_timeout_s <= 0:
                            return
                    continue
                for messages in batches.values():
                    self._pending.extend(messages)
            message = self._pending.popleft()
            yield ConsumedRecord(
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                timestamp_ms=message.timestamp,
                key=message.key.decode() if message.key is not None else None,
                headers={k: v.decode(errors="replace") for k, v in message.headers},
                value=await self.decode_value(message.value),
            )

    async def end_offsets(self) -> dict[TopicPartition, int]:
        partitions = [
            TopicPartition(topic, p)
            for topic in self._topics
            for p in self._consumer.partitions_for_topic(topic) or ()
        ]
        offsets: dict[TopicPartition, int] = await self._consumer.end_offsets(partitions)
        return offsets

    async def decode_value(self, value: bytes) -> dict[str, Any]:
        return await self._decoder.decode(value)


async def read_all(
    topics: Sequence[str],
    *,
    bootstrap_servers: str,
    registry_url: str | None = None,
    expected: int,
    timeout_s: float = 60.0,
    settle_s: float = 1.0,
    security: KafkaSecuritySettings | None = None,
) -> list[ConsumedRecord]:
    """Read until ``expected`` records arrived, then ``settle_s`` more to catch any extra ones.

    Returns early with what it has after ``timeout_s``; for tests and tools.
    """
    found: list[ConsumedRecord] = []
    async with RecordReader(
        topics, bootstrap_servers=bootstrap_servers, registry_url=registry_url, security=security
    ) as reader:

        async def collect(limit: int | None, idle_timeout_s: float | None) -> None:
            async for record in reader.records(idle_timeout_s):
                found.append(record)
                if limit is not None and len(found) >= limit:
                    return

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(collect(expected, None), timeout_s)
            await collect(None, settle_s)
    return found
