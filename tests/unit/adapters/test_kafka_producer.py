"""The producer KafkaSink builds is idempotent with acks=all, as the README promises.

The producer is the real AIOKafkaProducer the sink constructs; only its network start and stop
are replaced, so the settings checked are the ones aiokafka resolved, defaults included.
The same promise is checked on the records a real broker stored in
``tests/integration/test_kafka_idempotence.py``.
"""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer

from gateway.adapters.kafka import KafkaSink
from gateway.settings import KafkaSettings

ACKS_ALL = -1  # aiokafka stores acks="all" as -1, Kafka's wire value


async def _no_network(self: AIOKafkaProducer) -> None:
    return None


async def _closed(self: AIOKafkaProducer) -> None:
    self._closed = True  # never connected: nothing to release


@pytest.fixture
async def built_producer(monkeypatch: pytest.MonkeyPatch) -> AIOKafkaProducer:
    monkeypatch.setattr(AIOKafkaProducer, "start", _no_network)
    monkeypatch.setattr(AIOKafkaProducer, "stop", _closed)
    sink = KafkaSink(KafkaSettings(bootstrap_servers="127.0.0.1:1"))
    await sink.start()
    producer = sink._producer
    await sink.stop()
    assert isinstance(producer, AIOKafkaProducer)
    return producer


async def test_the_sink_producer_is_idempotent(built_producer: AIOKafkaProducer) -> None:
    # aiokafka keeps a transaction manager (producer id, epoch, sequence numbers) only for an
    # idempotent producer; without one the broker cannot drop a retried batch.
    txn = built_producer._txn_manager
    assert txn is not None
    assert txn.transactional_id is None  # idempotent, not transactional


async def test_the_sink_producer_waits_for_every_in_sync_replica(
    built_producer: AIOKafkaProducer,
) -> None:
    assert built_producer._sender._acks == ACKS_ALL
