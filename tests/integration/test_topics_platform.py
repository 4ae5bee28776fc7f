"""Topics as the platform sees them: data under the data prefix only, internal ones apart.

A Kafka Connect sink (or any consumer) subscribing ``^<prefix>\\..*`` must get Avro records and
nothing else; the workers' JSON claims live on ``_<prefix>.control``. With
``kafka.create_topics: false`` the platform owns the topics and the gateway only checks them.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from gateway.adapters.kafka import ensure_topics
from gateway.adapters.kafka_group import ensure_control_topic
from gateway.errors import ConfigError
from gateway.settings import GatewaySettings, KafkaSettings
from gateway.topic_catalogue import control_spec
from tests.integration.conftest import RunningGateway, SimulatorFactory, gateway_settings
from tests.integration.test_kafka_topics import topic_configs

pytestmark = [pytest.mark.kafka]

SINGLE_OBJECT_MAGIC = b"\xc3\x01"  # Avro single-object encoding (no registry configured)


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_a_consumer_of_the_data_prefix_reads_only_avro(
    kafka_bootstrap: str, topic_prefix: str, simulator_factory: SimulatorFactory
) -> None:
    sim = await simulator_factory(symbols=("BTCUSDT",), trades_per_second_per_symbol=50)
    settings = gateway_settings(
        sim,
        symbols=("BTCUSDT",),
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        registry_url=None,
    )
    assert settings.coordination.enabled  # the control topic is in use
    running = RunningGateway(settings)
    await running.wait_connected()
    await running.wait_acked(50)
    await running.stop()

    topics = await _topics(kafka_bootstrap)
    assert f"_{topic_prefix}.control" in topics
    data = {t for t in topics if re.match(rf"^{topic_prefix}\..*", t)}
    assert f"{topic_prefix}.control" not in data
    assert data == set(running.gateway.topics())

    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{topic_prefix}-sink",
        auto_offset_reset="earliest",
        metadata_max_age_ms=1000,
    )
    consumer.subscribe(pattern=rf"^{topic_prefix}\..*")
    await consumer.start()
    seen: dict[str, int] = {}
    try:
        async with asyncio.timeout(60):
            while sum(seen.values()) < 50:
                batches = await consumer.getmany(timeout_ms=1000)
                for partition, records in batches.items():
                    for record in records:
                        assert record.value is not None
                        assert record.value[:2] == SINGLE_OBJECT_MAGIC, partition.topic
                        seen[partition.topic] = seen.get(partition.topic, 0) + 1
    finally:
        await consumer.stop()
    assert f"{topic_prefix}.spot.trade" in seen


async def test_platform_owned_control_topic_is_checked_not_created(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = GatewaySettings(
        kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": topic_prefix},
        status={"enabled": False},
    )
    spec = control_spec(settings, 4)
    with pytest.raises(ConfigError, match=r"does not exist and kafka\.create_topics is false"):
        await ensure_control_topic(settings.kafka, spec, create=False)
    assert spec.name not in await _topics(kafka_bootstrap)

    small = control_spec(settings, 2)
    assert await ensure_control_topic(settings.kafka, small) == 2  # as a platform would
    with pytest.raises(ConfigError, match="has 2 partitions, the plan needs 4"):
        await ensure_control_topic(settings.kafka, spec, create=False)
    assert await ensure_control_topic(settings.kafka, control_spec(settings, 2), create=False) == 2


async def test_topic_settings_reach_the_broker(kafka_bootstrap: str, topic_prefix: str) -> None:
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_prefix,
        min_insync_replicas=1,
        topic_overrides={"trade": {"partitions": 2, "retention_ms": 60_000,
                                   "config": {"segment.bytes": "1048576"}}},
    )  # fmt: skip
    trade, kline = f"{topic_prefix}.spot.trade", f"{topic_prefix}.spot.kline"
    await ensure_topics(settings, [trade, kline])
    trade_config = await topic_configs(kafka_bootstrap, trade)
    kline_config = await topic_configs(kafka_bootstrap, kline)
    assert trade_config["min.insync.replicas"] == kline_config["min.insync.replicas"] == "1"
    assert trade_config["retention.ms"] == "60000"
    assert trade_config["segment.bytes"] == "1048576"
    assert kline_config["retention.ms"] == str(settings.retention_ms)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = {d["topic"]: d for d in await admin.describe_topics([trade, kline])}
    finally:
        await admin.close()
    assert len(described[trade]["partitions"]) == 2
    assert len(described[kline]["partitions"]) == settings.partitions
