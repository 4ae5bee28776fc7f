"""The merged-stream test (issue 11): since 2026-06-30 Binance's futures market-wide streams carry
USD-M and COIN-M contracts alike, on either market's host. Each contract's records must land in
its own market's topics (by ``st``), typed, and once, even when both markets subscribe the stream.

The simulator decides which contracts are COIN-M (its ``other_market_symbols``) and stamps
``st`` from its own rules; the gateway only reads ``st``: one oracle, one reader.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from gateway.consumers.reader import ConsumedRecord, read_all
from gateway.settings import GatewaySettings
from gateway.simulator.config import SimulatorConfig
from gateway.simulator.exchange import ExchangeSimulator
from tests.integration.conftest import RunningGateway

pytestmark = [pytest.mark.kafka]

USDM_SYMBOLS = ("BTCUSDT", "ETHUSDT")
COINM_SYMBOLS = ("BTCUSD_PERP", "ETHUSD_PERP")
MERGED_STREAMS = ["!miniTicker@arr", "!contractInfo", "!forceOrder@arr"]
KINDS = ("mini_ticker", "contract_info", "force_order")


def simulator_config(market: str, symbols: tuple[str, ...], others: tuple[str, ...]) -> Any:
    return SimulatorConfig(
        market=market,
        symbols=symbols,
        other_market_symbols=others,
        trades_per_second_per_symbol=20,
        update_interval_scale=0.02,  # tickers every 20 ms, contract info every 1.2 s
        seed=11,
    )


def settings(markets: dict[str, Any], kafka_bootstrap: str, topic_prefix: str) -> GatewaySettings:
    return GatewaySettings(
        gateway_id="merged-test",
        binance={"markets": markets},
        kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": topic_prefix, "partitions": 2},
        status={"enabled": False},
    )


async def run_and_read(
    config: GatewaySettings, seconds: float
) -> tuple[list[ConsumedRecord], Counter[str]]:
    running = RunningGateway(config)
    await running.wait_connected()
    await asyncio.sleep(seconds)
    await running.stop()
    acked = running.gateway.sink.stats.acked
    topics = running.gateway.topics()
    records = await read_all(
        topics, bootstrap_servers=config.kafka.bootstrap_servers, expected=acked, settle_s=1.0
    )
    assert len(records) == acked
    prefix = config.kafka.topic_prefix + "."
    return records, Counter(r.topic.removeprefix(prefix) for r in records)


def sent_values(record: ConsumedRecord) -> dict[str, Any]:
    """What Binance sent: the record without the gateway's receive time."""
    return {k: v for k, v in record.value.items() if k != "received_at_us"}


def contract_of(record: ConsumedRecord) -> str:
    symbol = record.value["symbol"]
    assert isinstance(symbol, str)
    return symbol


async def test_a_usdm_gateway_puts_coinm_contracts_of_merged_streams_in_coinm_topics(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    async with ExchangeSimulator(simulator_config("usdm", USDM_SYMBOLS, COINM_SYMBOLS)) as usdm:
        markets = {
            "usdm": {"symbols": USDM_SYMBOLS, "channels": ["aggTrade"],
                     "market_wide": MERGED_STREAMS,
                     "stream_url": usdm.ws_url, "rest_url": usdm.rest_url},
        }  # fmt: skip
        records, per_topic = await run_and_read(
            settings(markets, kafka_bootstrap, topic_prefix), 4.0
        )

    assert per_topic["dead_letter"] == 0, per_topic
    for kind in ("mini_ticker", "contract_info"):
        usdm_records = [r for r in records if r.topic.endswith(f".usdm.{kind}")]
        coinm_records = [r for r in records if r.topic.endswith(f".coinm.{kind}")]
        # Only this gateway's configured market, USD-M, was subscribed: COIN-M's topics exist
        # because its contracts arrive on USD-M's merged streams.
        assert {contract_of(r) for r in usdm_records} == set(USDM_SYMBOLS), kind
        assert {contract_of(r) for r in coinm_records} == set(COINM_SYMBOLS), kind
        assert {(r.value["market"], r.value["symbol_type"]) for r in usdm_records} == {("usdm", 1)}
        assert {(r.value["market"], r.value["symbol_type"]) for r in coinm_records} == {
            ("coinm", 2)
        }
        assert all(r.value["extra"] == {} for r in usdm_records + coinm_records), kind
    # USD-M dropped "ps" from !contractInfo; COIN-M still sends it.
    pairs = {
        (r.topic.rsplit(".", 2)[-2], r.value["pair"])
        for r in records
        if r.topic.endswith(".contract_info")
    }
    assert pairs == {("usdm", None), ("coinm", "BTCUSD"), ("coinm", "ETHUSD")}
    # Per-symbol streams carry the connection's own market only.
    assert {contract_of(r) for r in records if r.topic.endswith(".usdm.agg_trade")} <= set(
        USDM_SYMBOLS
    )
    assert per_topic["coinm.agg_trade"] == 0


async def test_a_merged_stream_subscribed_on_both_markets_publishes_each_contract_once(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    # Both markets' connections read the same merged frames, as on Binance where fstream and
    # dstream both serve the merged universe: here both point at one simulator's streams.
    usdm_config = simulator_config("usdm", USDM_SYMBOLS, COINM_SYMBOLS)
    coinm_config = simulator_config("coinm", COINM_SYMBOLS, USDM_SYMBOLS)
    async with ExchangeSimulator(usdm_config) as usdm, ExchangeSimulator(coinm_config) as coinm:
        markets = {
            "usdm": {"symbols": USDM_SYMBOLS, "channels": ["aggTrade"],
                     "market_wide": MERGED_STREAMS,
                     "stream_url": usdm.ws_url, "rest_url": usdm.rest_url},
            "coinm": {"symbols": COINM_SYMBOLS, "channels": [],
                      "market_wide": MERGED_STREAMS,
                      # USD-M serves these streams on its /market route only.
                      "stream_url": usdm.ws_url + "/market", "rest_url": coinm.rest_url},
        }  # fmt: skip
        records, per_topic = await run_and_read(
            settings(markets, kafka_bootstrap, topic_prefix), 4.0
        )

    assert per_topic["dead_letter"] == 0, per_topic
    for kind in KINDS:
        for market, symbols in (("usdm", USDM_SYMBOLS), ("coinm", COINM_SYMBOLS)):
            mine = [r for r in records if r.topic.endswith(f".{market}.{kind}")]
            assert {contract_of(r) for r in mine} <= set(symbols), (market, kind)
            # One event of one contract (same values but the receive time) is one record,
            # though two connections received it.
            seen = Counter(repr(sent_values(r)) for r in mine)
            assert [event for event, n in seen.items() if n > 1] == [], (market, kind)
    for market, symbols in (("usdm", USDM_SYMBOLS), ("coinm", COINM_SYMBOLS)):
        got = {contract_of(r) for r in records if r.topic.endswith(f".{market}.mini_ticker")}
        assert got == set(symbols), market
