"""Many stream kinds of two markets, routed like Binance, land on their kinds' topics."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from gateway.consumers.reader import read_all
from gateway.coordination.plan import slot_of
from gateway.settings import GatewaySettings
from gateway.simulator.config import SimulatorConfig
from gateway.simulator.exchange import ExchangeSimulator
from tests.integration.conftest import RunningGateway

pytestmark = [pytest.mark.kafka]

SPOT_CHANNELS = (
    "trade",
    "aggTrade",
    "bookTicker",
    "depth@100ms",
    "kline_1m",
    "miniTicker",
    "avgPrice",
)
USDM_CHANNELS = ("aggTrade", "depth@100ms", "bookTicker", "markPrice@1s", "kline_1m")


async def test_spot_and_usdm_streams_reach_their_topics(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    spot_config = SimulatorConfig(
        symbols=("BTCUSDT", "ETHUSDT"), trades_per_second_per_symbol=50, seed=3
    )
    usdm_config = SimulatorConfig(
        market="usdm", symbols=("BTCUSDT",), trades_per_second_per_symbol=50, seed=4
    )
    async with ExchangeSimulator(spot_config) as spot, ExchangeSimulator(usdm_config) as usdm:
        settings = GatewaySettings(
            gateway_id="streams-test",
            binance={
                "markets": {
                    "spot": {"symbols": ["BTCUSDT", "ETHUSDT"], "channels": SPOT_CHANNELS,
                             "market_wide": ["!miniTicker@arr"],
                             "stream_url": spot.ws_url, "rest_url": spot.rest_url},
                    "usdm": {"symbols": ["BTCUSDT"], "channels": USDM_CHANNELS,
                             "market_wide": ["!markPrice@arr@1s"],
                             "stream_url": usdm.ws_url, "rest_url": usdm.rest_url},
                }
            },
            kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": topic_prefix, "partitions": 2},
            status={"enabled": False},
        )  # fmt: skip
        running = RunningGateway(settings)
        await running.wait_connected()
        names = sorted(c.name for c in running.gateway.connections)
        usdm_btc = f"usdm-{slot_of('BTCUSDT', 8):03d}"
        # Market-wide streams are shards of their own; USD-M splits by route.
        assert {"spot-wide-0", "usdm-wide-market-0", f"{usdm_btc}-market-0",
                f"{usdm_btc}-public-0"} <= set(names)  # fmt: skip
        assert len([n for n in names if n.startswith("spot-") and "wide" not in n]) in (1, 2)
        await asyncio.sleep(3.5)  # long enough for 1 s tickers, klines and mark prices
        await running.stop()
        acked = running.gateway.sink.stats.acked

    topics = running.gateway.topics()
    records = await read_all(
        topics, bootstrap_servers=kafka_bootstrap, expected=acked, settle_s=1.0
    )
    assert len(records) == acked
    per_topic = Counter(r.topic.removeprefix(topic_prefix + ".") for r in records)
    for kind in (
        "trade",
        "agg_trade",
        "book_ticker",
        "depth_update",
        "kline",
        "mini_ticker",
        "avg_price",
    ):
        assert per_topic[f"spot.{kind}"] > 0, (kind, per_topic)
    for kind in ("agg_trade", "depth_update", "book_ticker", "mark_price", "kline"):
        assert per_topic[f"usdm.{kind}"] > 0, (kind, per_topic)
    assert per_topic["dead_letter"] == 0
    assert {r.key for r in records if r.topic.endswith("spot.depth_update")} == {
        "BTCUSDT",
        "ETHUSDT",
    }
    assert {r.value["market"] for r in records if ".usdm." in r.topic} == {"usdm"}
