"""Stream names, connection URLs and the stream catalogue."""

import pytest

from gateway.simulator.markets import MAX_STREAMS_PER_CONNECTION, Market, Route
from gateway.simulator.payloads import TimeUnit
from gateway.simulator.streams import (
    Channel,
    Kind,
    StreamCatalog,
    StreamKey,
    StreamRequestError,
    UnknownPathError,
    parse_connection_target,
    parse_stream_name,
    stream_name,
)


def test_stream_names_are_lowercase_symbol_at_channel() -> None:
    assert stream_name("BTCUSDT", Channel.TRADE) == "btcusdt@trade"
    assert stream_name("BTCUSDT", Channel.AGG_TRADE) == "btcusdt@aggTrade"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("btcusdt@trade", StreamKey(Kind.TRADE, "BTCUSDT")),
        ("bnbbtc@aggTrade", StreamKey(Kind.AGG_TRADE, "BNBBTC")),
        ("BTCUSDT@trade", None),  # uppercase symbols are the classic client mistake
        ("btcusdt@aggtrade", None),
        ("btcusdt@depth", StreamKey(Kind.DIFF_DEPTH, "BTCUSDT")),
        ("btcusdt@depth@100ms", StreamKey(Kind.DIFF_DEPTH, "BTCUSDT", speed="@100ms")),
        ("btcusdt@depth20@100ms", StreamKey(Kind.PARTIAL_DEPTH, "BTCUSDT", "20", "@100ms")),
        ("btcusdt@kline_1h@+08:00", StreamKey(Kind.KLINE, "BTCUSDT", "1h", tz="+08:00")),
        ("btcusdt@ticker_4h", StreamKey(Kind.ROLLING_TICKER, "BTCUSDT", "4h")),
        ("!ticker_1d@arr", StreamKey(Kind.ALL_ROLLING_TICKER, param="1d")),
        ("!markPrice@arr@1s", StreamKey(Kind.ALL_MARK_PRICE, speed="@1s")),
        (
            "btcusdt_perpetual@continuousKline_5m",
            StreamKey(Kind.CONTINUOUS_KLINE, "BTCUSDT_PERPETUAL", "5m"),
        ),
        ("tradingSession", StreamKey(Kind.TRADING_SESSION)),
        ("btcusdt", None),
        ("@trade", None),
    ],
)
def test_parse_stream_name(name: str, key: StreamKey) -> None:
    assert parse_stream_name(name) == key


def test_combined_target() -> None:
    request = parse_connection_target("/stream?streams=btcusdt@trade/ethusdt@aggTrade")
    assert request.streams == ("btcusdt@trade", "ethusdt@aggTrade")
    assert request.combined is True
    assert request.time_unit is TimeUnit.MILLISECOND


def test_raw_target_with_several_streams_and_a_time_unit() -> None:
    request = parse_connection_target(
        "/ws/btcusdt@trade/btcusdt@trade/ethusdt@trade?timeUnit=microsecond"
    )
    assert request.streams == ("btcusdt@trade", "ethusdt@trade")  # duplicates collapse, order kept
    assert request.combined is False
    assert request.time_unit is TimeUnit.MICROSECOND


def test_url_encoded_targets_are_accepted() -> None:
    request = parse_connection_target("/stream?streams=btcusdt%40trade%2Fethusdt%40trade")
    assert request.streams == ("btcusdt@trade", "ethusdt@trade")


@pytest.mark.parametrize("target", ["/ws", "/ws/", "/stream", "/stream?streams="])
def test_targets_without_streams_are_valid(target: str) -> None:
    assert parse_connection_target(target).streams == ()


@pytest.mark.parametrize("target", ["/", "/api/v3/ping", "/wss/btcusdt@trade", "/streams"])
def test_other_paths_are_unknown(target: str) -> None:
    with pytest.raises(UnknownPathError):
        parse_connection_target(target)


def test_a_bad_time_unit_is_refused_with_a_reason() -> None:
    with pytest.raises(StreamRequestError, match="timeUnit"):
        parse_connection_target("/ws/btcusdt@trade?timeUnit=NANOSECOND")


def test_catalog_knows_every_channel_of_every_symbol() -> None:
    catalog = StreamCatalog(["BTCUSDT"])
    assert catalog.is_known("btcusdt@trade") and catalog.is_known("btcusdt@aggTrade")
    assert not catalog.is_known("ethusdt@trade")


def test_catalog_refuses_unknown_streams_unless_allowed() -> None:
    catalog = StreamCatalog(["BTCUSDT"])
    with pytest.raises(StreamRequestError, match="Invalid stream name ethusdt@trade"):
        catalog.check(["btcusdt@trade", "ethusdt@trade"])
    catalog.check(["ethusdt@trade"], allow_unknown=True)


def test_catalog_caps_streams_per_connection() -> None:
    catalog = StreamCatalog(["BTCUSDT"])
    catalog.check(["btcusdt@trade"], already=MAX_STREAMS_PER_CONNECTION - 1)
    with pytest.raises(StreamRequestError, match="Too many streams: 1025 > 1024"):
        catalog.check(["btcusdt@trade"], already=MAX_STREAMS_PER_CONNECTION, allow_unknown=True)


@pytest.mark.parametrize(
    ("market", "name", "served"),
    [
        (Market.SPOT, "btcusdt@trade", True),
        (Market.SPOT, "btcusdt@depth@500ms", False),  # spot has 1000 ms and 100 ms only
        (Market.SPOT, "!bookTicker", False),  # removed December 2022
        (Market.SPOT, "!ticker@arr", False),  # retired 2026-03-26
        (Market.SPOT, "btcusdt@markPrice", False),
        (Market.SPOT, "btcusdt@kline_1h@+08:00", True),
        (Market.SPOT, "btcusdt@kline_1h@+05:00", False),
        (Market.USDM, "btcusdt@trade", True),  # served though undocumented (binance-streams.md)
        (Market.USDM, "btcusdt@continuousKline_1m", False),  # pair + contract type, not symbol
        (Market.USDM, "btcusdt@depth@500ms", True),
        (Market.USDM, "btcusdt@kline_1s", False),
        (Market.USDM, "btcusdt_perpetual@continuousKline_1s", True),
        (Market.USDM, "btcusdt_current_quarter@continuousKline_1m", False),  # no such contract
        (Market.USDM, "btcusd@assetIndex", True),
        (Market.USDM, "!bookTicker", True),
        (Market.USDM, "btcusdt@indexPrice", False),
        (Market.COINM, "btcusd@indexPrice@1s", True),
        (Market.COINM, "btcusd@markPrice", True),  # the pair's array form
        (Market.COINM, "btcusd_perp@markPriceKline_1m", True),
        (Market.COINM, "tradingSession", False),
        (Market.COINM, "btcusd_perp@trade", True),
        (Market.COINM, "btcusd_perp@indexPrice", False),  # a pair stream: btcusd@indexPrice
        (Market.COINM, "btcusd_perpetual@continuousKline_1m", True),
        (Market.COINM, "btcusd_perpetual@continuousKline_1s", False),  # USDⓈ-M only
    ],
)
def test_each_market_serves_its_own_streams(market: Market, name: str, served: bool) -> None:
    symbols = ["BTCUSD_PERP"] if market is Market.COINM else ["BTCUSDT"]
    assert StreamCatalog(symbols, market).is_known(name) is served


@pytest.mark.parametrize(
    ("target", "route", "streams"),
    [
        ("/public/ws/btcusdt@depth", Route.PUBLIC, ("btcusdt@depth",)),
        (
            "/market/stream?streams=btcusdt@aggTrade/btcusdt@markPrice",
            Route.MARKET,
            ("btcusdt@aggTrade", "btcusdt@markPrice"),
        ),
        ("/ws/btcusdt@markPrice", Route.NONE, ("btcusdt@markPrice",)),
        (
            "/private/ws?listenKey=k1&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE",
            Route.PRIVATE,
            ("k1",),
        ),
    ],
)
def test_usdm_routes(target: str, route: Route, streams: tuple[str, ...]) -> None:
    request = parse_connection_target(target, routed=True)
    assert (request.route, request.streams) == (route, streams)


def test_private_route_carries_its_events_and_routes_need_a_routed_market() -> None:
    request = parse_connection_target(
        "/private/stream?listenKey=a&events=X&listenKey=b&events=Y", routed=True
    )
    assert request.streams == ("a", "b") and request.events == ("X", "Y") and request.combined
    with pytest.raises(UnknownPathError):
        parse_connection_target("/public/ws/btcusdt@depth")
