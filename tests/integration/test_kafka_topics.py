"""Topics are created once with the configured layout; latest-state kinds are compacted."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from gateway.adapters.kafka import ensure_topics
from gateway.settings import KafkaSettings

pytestmark = pytest.mark.kafka


async def topic_configs(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        [(_, _, _, _, entries)] = response.resources
        return {name: value for name, value, *_ in entries}
    finally:
        await admin.close()


async def test_topics_get_partitions_retention_and_compaction(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, partitions=4, retention_ms=3_600_000
    )
    trade, snapshot = f"{topic_prefix}.spot.trade", f"{topic_prefix}.spot.depth_snapshot"
    assert sorted(await ensure_topics(settings, [trade, snapshot])) == sorted([trade, snapshot])
    assert await ensure_topics(settings, [trade, snapshot]) == []  # idempotent

    trade_config, snapshot_config = (
        await topic_configs(kafka_bootstrap, trade),
        await topic_configs(kafka_bootstrap, snapshot),
    )
    assert trade_config["cleanup.policy"] == "delete"
    assert trade_config["retention.ms"] == "3600000"
    assert snapshot_config["cleanup.policy"] == "compact,delete"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([trade])
        assert len(described["partitions"]) == 4
    finally:
        await admin.close()
