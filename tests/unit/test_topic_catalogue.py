"""The topic catalogue: one list for the gateway's start-up and the platform's resources."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.commands.strimzi import resource_name
from gateway.errors import ConfigError
from gateway.settings import load_settings
from gateway.topic_catalogue import TopicRole, catalogue, control_topic, workers_group


def test_internal_topics_and_the_group_live_apart_from_the_data() -> None:
    settings = load_settings()
    specs = catalogue(settings, shards=9)
    internal = [spec for spec in specs if spec.role is TopicRole.INTERNAL]
    assert [spec.name for spec in internal] == ["_binance.control"]
    assert internal[0].partitions == 9
    assert workers_group(settings) == "_binance.workers"
    data = re.compile(r"^binance\..*")
    assert all(data.match(s.name) for s in specs if s.role is TopicRole.DATA)
    assert not any(data.match(s.name) for s in internal)


def test_pinned_names_keep_an_existing_deployment_on_its_topics(tmp_path: Path) -> None:
    # The migration path: an existing deployment can keep its old control topic and group.
    config = tmp_path / "g.yaml"
    config.write_text(
        "coordination:\n  control_topic: binance.control\n  group_id: binance.workers\n"
    )
    settings = load_settings(config)
    assert control_topic(settings) == "binance.control"
    assert workers_group(settings) == "binance.workers"


def test_per_kind_overrides_and_min_insync_replicas(tmp_path: Path) -> None:
    config = tmp_path / "g.yaml"
    config.write_text(
        "kafka:\n  replication_factor: 3\n  min_insync_replicas: 2\n  topic_overrides:\n"
        "    trade: {partitions: 24, retention_ms: 86400000}\n"
        "    dead_letter: {config: {retention.ms: '2592000000'}}\n"
    )
    specs = {s.name: s for s in catalogue(load_settings(config), shards=8)}
    trade, kline = specs["binance.spot.trade"], specs["binance.spot.kline"]
    assert (trade.partitions, trade.config["retention.ms"]) == (24, "86400000")
    assert (kline.partitions, kline.config["retention.ms"]) == (6, "604800000")
    assert specs["binance.dead_letter"].config["retention.ms"] == "2592000000"
    assert {s.config["min.insync.replicas"] for s in specs.values()} == {"2"}
    assert {s.replicas for s in specs.values()} == {3}
    assert specs["binance.spot.book_snapshot"].config["cleanup.policy"] == "compact,delete"
    assert specs["binance.spot.depth_snapshot"].config["cleanup.policy"] == "compact,delete"
    assert specs["_binance.control"].config["cleanup.policy"] == "compact"


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("kafka:\n  min_insync_replicas: 2\n", "must not exceed replication_factor"),
        ("kafka:\n  internal_topic_prefix: binance.internal\n", "inside the data prefix"),
        ("kafka:\n  topic_overrides:\n    trade: {partitions: 0}\n", "partitions"),
        ("kafka:\n  topic_overrides:\n    trades: {partitions: 2}\n", "no topics of kind trades"),
    ],
)
def test_topic_settings_that_cannot_work_are_refused(
    tmp_path: Path, yaml_text: str, message: str
) -> None:
    config = tmp_path / "g.yaml"
    config.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config)


def test_resource_names_are_kubernetes_names() -> None:
    assert resource_name("binance.spot.agg_trade") == "binance.spot.agg-trade"
    assert resource_name("_binance.control") == "internal-binance.control"
    assert resource_name("binance.usdm.account.Desk_A") == "binance.usdm.account.desk-a"
