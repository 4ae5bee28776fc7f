"""Every documented example payload in ``shared/binance-reference/vectors`` has a simulator twin
with the same keys, key order and value types, produced by the code that feeds the sockets."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
import pytest

from gateway.simulator.markets import Market
from gateway.simulator.payloads import (
    agg_trade_builder,
    combined_frame,
    encode,
    futures_rest_agg_trade,
    rest_agg_trade,
    trade_payload,
)
from gateway.simulator.render_market import block_trade_payload, server_shutdown_payload
from gateway.simulator.render_rest import rate_limits, rest_depth, rest_kline
from tests.unit.simulator.conformance import Scenario, assert_conforms
from tests.vectors import VECTORS_DIR, vector

S, U, C = Market.SPOT, Market.USDM, Market.COINM


@cache
def scenario(market: Market) -> Scenario:
    return Scenario(market)


def stream(market: Market, name: str) -> Any:
    return lambda: scenario(market).one(name)


def agg_trade(market: Market) -> Any:
    sc = scenario(market)
    fill = sc.fills[-1]
    return agg_trade_builder(market)(sc.market.specs[fill.agg_trade.symbol], fill.agg_trade)


def block_trade() -> Any:
    sc = scenario(S)
    for fill in sc.fills:
        if (block := sc.market.block_trade(fill)) is not None:
            return block_trade_payload(sc.market.specs[block.symbol], block)
    raise AssertionError("no block trade in the scenario")


def book_ticker(market: Market) -> Any:
    sc = scenario(market)
    return sc.market.book_ticker(sc.symbols[0], sc.now_us)(sc.market.profile and _MS)


def depth_snapshot(market: Market) -> Any:
    sc = scenario(market)
    symbol = sc.symbols[0]
    snapshot = sc.market.book(symbol).snapshot(100)
    return rest_depth(market, sc.market.specs[symbol], snapshot, sc.now_us // 1_000)


def klines(market: Market) -> Any:
    sc = scenario(market)
    symbol = sc.symbols[0]
    rows = sc.market.candles[symbol].history("1m", 0, sc.now_us // 1_000)
    assert rows
    return [rest_kline(sc.market.specs[symbol], row) for row in rows]


def rest_agg_trades(market: Market) -> Any:
    sc = scenario(market)
    fill = sc.fills[-1]
    if market is S:
        return [rest_agg_trade(fill.agg_trade)]
    return [futures_rest_agg_trade(sc.market.specs[fill.agg_trade.symbol], fill.agg_trade)]


from gateway.simulator.payloads import TimeUnit  # noqa: E402

_MS = TimeUnit.MILLISECOND


def combined(name: str, payload: Any) -> Any:
    return orjson.loads(combined_frame(name, encode(payload)))


PRODUCERS: dict[str, Any] = {
    # spot
    "spot/trade.json": lambda: trade_payload(scenario(S).fills[-1].trades[0]),
    "spot/aggTrade.json": lambda: agg_trade(S),
    "spot/avgPrice.json": stream(S, "btcusdt@avgPrice"),
    "spot/blockTrade.json": block_trade,
    "spot/bookTicker.json": lambda: book_ticker(S),
    "spot/combined_wrapper_example.json": lambda: combined("btcusdt@aggTrade", agg_trade(S)),
    "spot/depth_diff.json": stream(S, "btcusdt@depth@100ms"),
    "spot/depth_partial.json": stream(S, "btcusdt@depth5"),
    "spot/kline.json": stream(S, "btcusdt@kline_1m"),
    "spot/kline_utc8.json": stream(S, "btcusdt@kline_1d@+08:00"),
    "spot/miniTicker.json": stream(S, "btcusdt@miniTicker"),
    "spot/miniTicker_arr.json": stream(S, "!miniTicker@arr"),
    "spot/referencePrice.json": stream(S, "btcusdt@referencePrice"),
    "spot/ticker.json": stream(S, "btcusdt@ticker"),
    "spot/ticker_1h.json": stream(S, "btcusdt@ticker_1h"),
    "spot/ticker_1h_arr.json": stream(S, "!ticker_1h@arr"),
    "spot/serverShutdown.json": lambda: server_shutdown_payload(scenario(S).now_us),
    "spot/serverShutdown.combined.json": lambda: combined(
        "!serverShutdown", server_shutdown_payload(scenario(S).now_us)
    ),
    "spot/rest_aggTrades.json": lambda: rest_agg_trades(S),
    "spot/rest_depth.json": lambda: depth_snapshot(S),
    "spot/rest_klines.json": lambda: klines(S),
    "spot/rest_rateLimits.json": lambda: rate_limits(S),
    # usdm
    "usdm/aggTrade.json": lambda: agg_trade(U),
    "usdm/assetIndex_arr.json": stream(U, "!assetIndex@arr"),
    "usdm/bookTicker.json": lambda: book_ticker(U),
    "usdm/bookTicker_all.json": stream(U, "!bookTicker"),
    "usdm/compositeIndex.json": stream(U, "btcusdt@compositeIndex"),
    "usdm/continuousKline.json": stream(U, "btcusdt_perpetual@continuousKline_1m"),
    "usdm/contractInfo.json": stream(U, "!contractInfo"),
    "usdm/depth_diff.json": stream(U, "btcusdt@depth@100ms"),
    "usdm/depth_partial.json": stream(U, "btcusdt@depth5@500ms"),
    "usdm/forceOrder.json": stream(U, "btcusdt@forceOrder"),
    "usdm/forceOrder_arr.json": stream(U, "!forceOrder@arr"),
    "usdm/kline.json": stream(U, "btcusdt@kline_1m"),
    "usdm/markPrice.json": stream(U, "btcusdt@markPrice@1s"),
    "usdm/markPrice_arr.json": stream(U, "!markPrice@arr"),
    "usdm/miniTicker.json": stream(U, "btcusdt@miniTicker"),
    "usdm/miniTicker_arr.json": stream(U, "!miniTicker@arr"),
    "usdm/rpiDepth.json": stream(U, "btcusdt@rpiDepth@500ms"),
    "usdm/ticker.json": stream(U, "btcusdt@ticker"),
    "usdm/ticker_arr.json": stream(U, "!ticker@arr"),
    "usdm/tradingSession.json": stream(U, "tradingSession"),
    "usdm/rest_aggTrades.json": lambda: rest_agg_trades(U),
    "usdm/rest_depth.json": lambda: depth_snapshot(U),
    "usdm/rest_klines.json": lambda: klines(U),
    # coinm
    "coinm/aggTrade.json": lambda: agg_trade(C),
    "coinm/bookTicker.json": lambda: book_ticker(C),
    "coinm/bookTicker_all.json": lambda: book_ticker(C),
    "coinm/continuousKline.json": stream(C, "btcusd_perpetual@continuousKline_1m"),
    "coinm/contractInfo.json": stream(C, "!contractInfo"),
    "coinm/depth_diff.json": stream(C, "btcusd_perp@depth"),
    "coinm/depth_partial.json": stream(C, "btcusd_perp@depth10"),
    "coinm/forceOrder.json": stream(C, "btcusd_perp@forceOrder"),
    "coinm/forceOrder_arr.json": stream(C, "!forceOrder@arr"),
    "coinm/indexPrice.json": stream(C, "btcusd@indexPrice@1s"),
    "coinm/indexPriceKline.json": stream(C, "btcusd@indexPriceKline_1m"),
    "coinm/kline.json": stream(C, "btcusd_perp@kline_1m"),
    "coinm/markPrice.json": stream(C, "btcusd_perp@markPrice"),
    "coinm/markPriceKline.json": stream(C, "btcusd_perp@markPriceKline_1m"),
    "coinm/markPrice_pair_arr.json": stream(C, "btcusd@markPrice"),
    "coinm/miniTicker.json": stream(C, "btcusd_perp@miniTicker"),
    "coinm/miniTicker_arr.json": stream(C, "!miniTicker@arr"),
    "coinm/ticker.json": stream(C, "btcusd_perp@ticker"),
    "coinm/ticker_arr.json": stream(C, "!ticker@arr"),
}

RETIRED_STREAMS = {
    # Binance removed these; the simulator refuses them like any unknown stream.
    "spot/bookTicker_all_RETIRED.json": (S, "!bookTicker"),
    "spot/ticker_arr_RETIRED.json": (S, "!ticker@arr"),
}


@pytest.mark.parametrize("relative", sorted(PRODUCERS))
def test_payload_matches_the_documented_example(relative):
    assert_conforms(PRODUCERS[relative](), vector(relative))


@pytest.mark.parametrize("relative", sorted(RETIRED_STREAMS))
def test_retired_streams_are_not_served(relative):
    market, name = RETIRED_STREAMS[relative]
    assert not scenario(market).catalog.is_known(name)
    assert vector(relative)  # the example still exists, for replaying old captures


def test_microsecond_connections_get_every_time_field_in_microseconds():
    sc = scenario(S)
    for name in ("btcusdt@kline_1m", "btcusdt@ticker", "btcusdt@avgPrice"):
        key = sc.catalog.key(name)
        assert key is not None
        (make,) = sc.market.render(name, key, sc.now_us)[-1:]
        millis, micros = make(TimeUnit.MILLISECOND), make(TimeUnit.MICROSECOND)
        assert micros["E"] == sc.now_us and millis["E"] == sc.now_us // 1_000


def all_vector_files() -> list[str]:
    return sorted(str(path.relative_to(VECTORS_DIR)) for path in VECTORS_DIR.rglob("*.json"))
