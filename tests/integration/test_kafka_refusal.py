"""A record Kafka refuses stops the gateway loudly; it is never dropped quietly (README "Nothing lost silently").

The trade topic is created beforehand with a ``max.message.bytes`` no record batch fits in, so the
broker itself refuses every trade (MESSAGE_TOO_LARGE, not retriable). The gateway must end with
``KafkaDeliveryError`` (the CLI's exit code 1) instead of carrying on without those trades.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from gateway.errors import KafkaDeliveryError
from gateway.worker import Gateway
from tests.integration.conftest import gateway_settings

pytestmark = [pytest.mark.kafka]

TOO_SMALL_FOR_ANY_BATCH = "64"  # bytes; a record batch's header alone is 61


async def test_a_record_kafka_refuses_stops_the_gateway(
    kafka_bootstrap, topic_prefix, simulator_factory
):
    sim = await simulator_factory(symbols=("BTCUSDT",), seed=8, trades_per_second_per_symbol=50)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([
            NewTopic(f"{topic_prefix}.spot.trade", 1, 1,
                     topic_configs={"max.message.bytes": TOO_SMALL_FOR_ANY_BATCH}),
        ])  # fmt: skip
    finally:
        await admin.close()
    settings = gateway_settings(
        sim,
        symbols=("BTCUSDT",),
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        registry_url=None,
        channels=["trade"],
        backfill=False,
    )
    gateway = Gateway(settings)

    with pytest.raises(KafkaDeliveryError, match="not delivered"):
        await asyncio.wait_for(gateway.run(asyncio.Event()), timeout=60)
    assert gateway.sink.stats.failed >= 1
