"""Shared pieces of the connection-switch tests (scheduled rotation, ``serverShutdown``)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from gateway.consumers.reader import read_all
from gateway.runtime.worker import Gateway
from gateway.settings import GatewaySettings
from gateway.simulator.exchange import ExchangeSimulator

# (topic kind, symbol) -> record values in Kafka's order
ByKindAndSymbol = dict[tuple[str, str | None], list[dict[str, Any]]]


def switching_settings(
    sim: ExchangeSimulator,
    *,
    gateway_id: str,
    symbols: tuple[str, ...],
    channels: list[str],
    rotate_after_s: float,
    handover_timeout_s: float,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> GatewaySettings:
    """One spot market on ``sim`` over ``channels``, no book snapshots, two partitions."""
    return GatewaySettings(
        gateway_id=gateway_id,
        binance={
            "rotate_after_s": rotate_after_s,
            "handover_timeout_s": handover_timeout_s,
            "markets": {"spot": {
                "symbols": symbols, "channels": channels,
                "stream_url": sim.ws_url, "rest_url": sim.rest_url, "book_snapshot_interval_s": None,
            }},
        },
        kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": topic_prefix, "partitions": 2},
        status={"enabled": False},
    )  # fmt: skip


async def published(gateway: Gateway, kafka_bootstrap: str) -> ByKindAndSymbol:
    """Everything the stopped ``gateway`` had acknowledged, read back from Kafka."""
    acked = gateway.sink.stats.acked
    records = await read_all(gateway.topics(), bootstrap_servers=kafka_bootstrap, expected=acked)
    assert len(records) == acked
    by_kind_and_symbol: ByKindAndSymbol = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        by_kind_and_symbol[(record.topic.rsplit(".", 1)[-1], record.key)].append(record.value)
    return by_kind_and_symbol
