import pytest

from gateway.binance.channels import (
    Instrument,
    route_of,
    stream_for,
    validate_channels,
    validate_routes,
)
from gateway.binance.markets import LIMITS, Market
from gateway.binance.streams import TimeUnit, chunk, combined_path, stream_name


def test_stream_names_are_lowercase_symbol_at_channel() -> None:
    assert stream_name("BTCUSDT", "trade") == "btcusdt@trade"
    assert stream_name("bnbbtc", "aggTrade") == "bnbbtc@aggTrade"


@pytest.mark.parametrize("bad", ["", "btc@usdt", "a/b"])
def test_stream_name_rejects_what_would_corrupt_a_url(bad: str) -> None:
    with pytest.raises(ValueError):
        stream_name(bad, "trade")


def test_combined_path_joins_with_slash_and_adds_time_unit_only_when_micro() -> None:
    names = ["btcusdt@trade", "ethusdt@aggTrade"]
    assert combined_path(names) == "/stream?streams=btcusdt@trade/ethusdt@aggTrade"
    assert combined_path(names, TimeUnit.MICROSECOND).endswith("&timeUnit=MICROSECOND")
    with pytest.raises(ValueError):
        combined_path([])


def test_chunk_splits_at_the_per_connection_limit_keeping_order() -> None:
    names = [f"s{i}@trade" for i in range(2049)]
    groups = chunk(names, max_chars=10**6)
    assert [len(g) for g in groups] == [1024, 1024, 1]
    assert [n for g in groups for n in g] == names
    assert chunk([], 5) == []


def test_chunk_keeps_every_url_under_binances_request_size() -> None:
    names = [stream_name(f"SYM{i}USDT", "aggTrade") for i in range(2000)]
    groups = chunk(names)
    assert [n for g in groups for n in g] == names
    assert all(len("/".join(g)) <= 7_800 for g in groups)
    assert all(len(combined_path(g, TimeUnit.MICROSECOND)) < 8_000 for g in groups)
    assert len(groups) == 6  # about 400 of these names fit in one URL, far below 1024
    with pytest.raises(ValueError):
        chunk(["x" * 9000])
    with pytest.raises(ValueError):
        chunk(names, 0)


def test_documented_limits() -> None:
    # docs/binance.md §2: 1024 streams per connection; 5 msg/s spot, 10 msg/s futures; 20 s / 3 min pings.
    assert LIMITS[Market.SPOT].max_streams_per_connection == 1024
    assert LIMITS[Market.SPOT].max_incoming_messages_per_s == 5
    assert LIMITS[Market.USDM].max_incoming_messages_per_s == 10
    assert LIMITS[Market.SPOT].server_ping_interval_s == 20
    assert LIMITS[Market.SPOT].pong_deadline_s == 60
    assert LIMITS[Market.COINM].server_ping_interval_s == 180
    assert TimeUnit.MILLISECOND.to_us == 1000
    assert TimeUnit.MICROSECOND.to_us == 1


@pytest.mark.parametrize(
    ("market", "channel"),
    [(Market.SPOT, c) for c in ("trade", "aggTrade", "depth@100ms", "kline_1s", "kline_1m@+08:00",
                                "ticker_4h", "depth20@100ms", "avgPrice", "blockTrade")]
    + [(Market.USDM, c) for c in ("trade", "markPrice@1s", "rpiDepth@500ms", "depth@500ms",
                                  "continuousKline_1s", "kline_1M", "compositeIndex")]
    + [(Market.COINM, c) for c in ("trade", "indexPrice@1s", "indexPriceKline_1h",
                                   "markPriceKline_1m", "continuousKline_1w")],
)  # fmt: skip
def test_channels_each_market_serves_pass(market: Market, channel: str) -> None:
    assert validate_channels(market, [channel], wide=False) == (channel,)


@pytest.mark.parametrize(
    ("market", "channel"),
    [(Market.SPOT, c) for c in ("trades", "kline_7m", "depth7", "!miniTicker@arr", "",
                                "markPrice", "depth@500ms", "depth@250ms", "continuousKline_1m")]
    + [(Market.USDM, c) for c in ("kline_1s", "ticker_1h", "indexPrice", "markPriceKline_1m",
                                  "kline_1m@+08:00", "blockTrade", "avgPrice")]
    + [(Market.COINM, c) for c in ("rpiDepth@500ms", "compositeIndex", "continuousKline_1s")],
)  # fmt: skip
def test_channels_a_market_does_not_serve_are_refused_at_start_up(
    market: Market, channel: str
) -> None:
    with pytest.raises(ValueError, match=market.value):
        validate_channels(market, [channel], wide=False)


def test_market_wide_streams_are_checked_per_market() -> None:
    assert validate_channels(Market.USDM, ["!markPrice@arr@1s"], wide=True)
    for market, stream in [(Market.USDM, "!ticker@arr@1s"), (Market.SPOT, "!ticker@arr"),
                           (Market.SPOT, "!bookTicker"), (Market.COINM, "!markPrice@arr"),
                           (Market.USDM, "trade")]:  # fmt: skip
        with pytest.raises(ValueError):
            validate_channels(market, [stream], wide=True)


def test_usdm_routes_book_streams_and_trades_to_public_and_the_rest_to_market() -> None:
    public = [
        "btcusdt@depth@100ms",
        "btcusdt@depth5",
        "btcusdt@bookTicker",
        "!bookTicker",
        "btcusdt@rpiDepth@500ms",
        "btcusdt@trade",
    ]
    market = [
        "btcusdt@aggTrade",
        "btcusdt@markPrice@1s",
        "!markPrice@arr",
        "!forceOrder@arr",
        "tradingSession",
        "btcusdt_perpetual@continuousKline_1m",
    ]
    assert {route_of(Market.USDM, s) for s in public} == {"/public"}
    assert {route_of(Market.USDM, s) for s in market} == {"/market"}
    assert route_of(Market.SPOT, "btcusdt@trade") == ""


def test_route_overrides_are_data_not_code() -> None:
    assert route_of(Market.COINM, "btcusd_perp@aggTrade") == ""
    moved = {"*": "/market", "depth": "/public"}
    assert route_of(Market.COINM, "btcusd_perp@aggTrade", moved) == "/market"
    assert route_of(Market.COINM, "btcusd_perp@depth@100ms", moved) == "/public"
    assert route_of(Market.USDM, "btcusdt@trade", {"trade": "/market"}) == "/market"
    with pytest.raises(ValueError):
        validate_routes(Market.SPOT, {"*": "/market"})
    with pytest.raises(ValueError):
        validate_routes(Market.COINM, {"rpiDepth": "/public"})
    with pytest.raises(ValueError):
        validate_routes(Market.USDM, {"trade": "/private"})


def test_pair_keyed_streams_are_named_by_pair_and_contract_type() -> None:
    perp = Instrument("BTCUSDT", "BTCUSDT", "PERPETUAL")
    assert (
        stream_for(Market.USDM, perp, "continuousKline_1m")
        == "btcusdt_perpetual@continuousKline_1m"
    )
    inverse = Instrument("BTCUSD_PERP", "BTCUSD", "PERPETUAL")
    assert stream_for(Market.COINM, inverse, "indexPrice") == "btcusd@indexPrice"
    assert stream_for(Market.COINM, inverse, "indexPriceKline_1m") == "btcusd@indexPriceKline_1m"
    assert stream_for(Market.COINM, inverse, "markPriceKline_1m") == "btcusd_perp@markPriceKline_1m"
    quarter = Instrument("BTCUSD_261225", "BTCUSD", "CURRENT_QUARTER")
    assert stream_for(Market.COINM, quarter, "continuousKline_1h") == (
        "btcusd_current_quarter@continuousKline_1h"
    )
    assert stream_for(Market.USDM, Instrument("BTCUSDT"), "continuousKline_1m") is None
    with pytest.raises(ValueError):
        stream_for(Market.SPOT, Instrument("BTCUSDT"), "indexPrice")


def test_timezone_klines_survive_the_query_string() -> None:
    assert combined_path(["btcusdt@kline_1m@+08:00"]) == "/stream?streams=btcusdt@kline_1m@%2B08:00"
