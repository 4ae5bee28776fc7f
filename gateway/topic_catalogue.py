"""Every topic a configuration uses, with its settings: one catalogue for the gateway and the platform.

The gateway creates these topics at start-up (``kafka.create_topics``), and ``gateway topics
--strimzi`` writes the same list as Strimzi ``KafkaTopic`` resources (:mod:`gateway.commands.strimzi`), so
what the platform declares and what the gateway would have created cannot drift apart.

Two roles, under two prefixes:

* **data** (``<topic_prefix>.…``, e.g. ``binance.spot.trade``): Avro records only, the public
  event kinds of each configured market, the gateway's own records (``dead_letter``,
  ``trade_gap``) and the private account topics. A consumer of ``^binance\\..*`` reads Avro.
* **internal** (``<internal prefix>.…``, ``_binance.control``): the workers' JSON claims. The
  leading underscore is Kafka's convention for internal topics (``__consumer_offsets``), which
  most tools hide; the workers' consumer group lives under the same prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from gateway.binance.merger import other_market_kinds
from gateway.binance.messages import RECORD_CLASSES
from gateway.records.topics import (
    DEAD_LETTER_KIND,
    STREAM_STATUS_KIND,
    TRADE_GAP_KIND,
    TopicNamer,
)
from gateway.settings import GatewaySettings, KafkaSettings

CONTROL_KIND = "control"
ACCOUNT_KIND = "account"
WORKERS_GROUP = "workers"
ACCOUNT_TOPIC_PARTITIONS = 1
"""An account's events only make sense in order across kinds: one partition (gateway.accounts)."""


class TopicRole(StrEnum):
    DATA = "data"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic as it should exist: name, layout and topic-level config."""

    name: str
    kind: str
    role: TopicRole
    partitions: int
    replicas: int
    config: dict[str, str] = field(default_factory=dict)


def control_topic(settings: GatewaySettings) -> str:
    """``_binance.control`` unless ``coordination.control_topic`` names another."""
    configured = settings.coordination.control_topic
    return configured or f"{settings.kafka.internal_prefix}.{CONTROL_KIND}"


def workers_group(settings: GatewaySettings) -> str:
    """``_binance.workers`` unless ``coordination.group_id`` names another."""
    configured = settings.coordination.group_id
    return configured or f"{settings.kafka.internal_prefix}.{WORKERS_GROUP}"


def topic_config(settings: KafkaSettings, kind: str) -> dict[str, str]:
    """Retention, compaction where a topic holds latest state, min.insync.replicas, overrides."""
    override = settings.topic_overrides.get(kind)
    retention = settings.retention_ms
    if override is not None and override.retention_ms is not None:
        retention = override.retention_ms
    config = {"retention.ms": str(retention)}
    if kind in settings.compacted_kinds:
        # compact,delete: the latest record per symbol survives compaction, and the time-based
        # retention still bounds the topic.
        config["cleanup.policy"] = "compact,delete"
    if settings.min_insync_replicas is not None:
        config["min.insync.replicas"] = str(settings.min_insync_replicas)
    if override is not None:
        config.update(override.config)
    return config


def partitions(settings: KafkaSettings, kind: str, default: int | None = None) -> int:
    override = settings.topic_overrides.get(kind)
    if override is not None and override.partitions is not None:
        return override.partitions
    return default if default is not None else settings.partitions


def kind_of(topic: str) -> str:
    """A data topic's kind from its name (``binance.spot.trade`` -> ``trade``)."""
    return topic.rsplit(".", 1)[-1]


def data_spec(settings: KafkaSettings, name: str, kind: str | None = None) -> TopicSpec:
    kind = kind or kind_of(name)
    return TopicSpec(
        name,
        kind,
        TopicRole.DATA,
        partitions(settings, kind),
        settings.replication_factor,
        topic_config(settings, kind),
    )


def data_topics(settings: GatewaySettings) -> list[TopicSpec]:
    """Each public kind of each configured market, the gateway's records, the accounts."""
    kafka, namer = settings.kafka, TopicNamer(settings.kafka.topic_prefix)
    named = {
        namer.gateway_topic(kind): kind
        for kind in (DEAD_LETTER_KIND, TRADE_GAP_KIND, STREAM_STATUS_KIND)
    }
    for market, market_settings in settings.binance.markets.items():
        named.update(
            {namer.topic(market.value, c.KIND): c.KIND for c in RECORD_CLASSES[market.value]}
        )
        # Merged streams carry the other futures market's contracts to its own topics.
        for group, kind in other_market_kinds(market, market_settings.market_wide):
            named[namer.topic(group, kind)] = kind
    specs = [data_spec(kafka, name, kind) for name, kind in named.items()]
    for account in settings.accounts:
        specs.append(account_spec(kafka, namer.account_topic(account.market.value, account.alias)))
    return sorted(specs, key=lambda spec: spec.name)


def account_spec(settings: KafkaSettings, name: str) -> TopicSpec:
    """An account topic: one partition unless overridden (``topic_overrides.account``)."""
    return TopicSpec(
        name,
        ACCOUNT_KIND,
        TopicRole.DATA,
        partitions(settings, ACCOUNT_KIND, ACCOUNT_TOPIC_PARTITIONS),
        settings.replication_factor,
        topic_config(settings, ACCOUNT_KIND),
    )


def control_spec(settings: GatewaySettings, shards: int) -> TopicSpec:
    """The control topic: compacted (only the standing claims matter), one partition per shard."""
    kafka = settings.kafka
    config = {"cleanup.policy": "compact"}
    if kafka.min_insync_replicas is not None:
        config["min.insync.replicas"] = str(kafka.min_insync_replicas)
    override = kafka.topic_overrides.get(CONTROL_KIND)
    if override is not None:
        config.update(override.config)
    return TopicSpec(
        control_topic(settings),
        CONTROL_KIND,
        TopicRole.INTERNAL,
        max(shards, partitions(kafka, CONTROL_KIND, shards)),
        kafka.replication_factor,
        config,
    )


def catalogue(settings: GatewaySettings, shards: int) -> list[TopicSpec]:
    """Every topic of the configuration; ``shards`` = the plan's shards plus the accounts."""
    internal = [control_spec(settings, shards)] if settings.coordination.enabled else []
    return [*data_topics(settings), *internal]
