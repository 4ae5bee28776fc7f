import pytest

from gateway.binance.markets import LIMITS, Market
from gateway.binance.streams import (
    TimeUnit,
    chunk,
    combined_path,
    stream_name,
    usdm_route,
    validate_channel,
    validate_market_wide,
)


def test_stream_names_are_lowercase_symbol_at_channel():
    assert stream_name("BTCUSDT", "trade") == "btcusdt@trade"
    assert stream_name("bnbbtc", "aggTrade") == "bnbbtc@aggTrade"


@pytest.mark.parametrize("bad", ["", "btc@usdt", "a/b"])
def test_stream_name_rejects_what_would_corrupt_a_url(bad):
    with pytest.raises(ValueError):
        stream_name(bad, "trade")


def test_combined_path_joins_with_slash_and_adds_time_unit_only_when_micro():
    names = ["btcusdt@trade", "ethusdt@aggTrade"]
    assert combined_path(names) == "/stream?streams=btcusdt@trade/ethusdt@aggTrade"
    assert combined_path(names, TimeUnit.MICROSECOND).endswith("&timeUnit=MICROSECOND")
    with pytest.raises(ValueError):
        combined_path([])


def test_chunk_splits_at_the_per_connection_limit_keeping_order():
    names = [f"s{i}@trade" for i in range(2049)]
    groups = chunk(names, max_chars=10**6)
    assert [len(g) for g in groups] == [1024, 1024, 1]
    assert [n for g in groups for n in g] == names
    assert chunk([], 5) == []


def test_chunk_keeps_every_url_under_binances_request_size():
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


def test_documented_limits():
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
    "channel",
    ["trade", "aggTrade", "bookTicker", "depth", "depth@100ms", "depth20@100ms", "kline_1M",
     "kline_1m@+08:00", "ticker_4h", "markPrice@1s", "rpiDepth@500ms", "continuousKline_1s"],
)  # fmt: skip
def test_known_channels_pass(channel):
    assert validate_channel(channel) == channel


@pytest.mark.parametrize("channel", ["trades", "kline_7m", "depth7", "!miniTicker@arr", ""])
def test_typos_are_caught_at_start_up(channel):
    with pytest.raises(ValueError):
        validate_channel(channel)


def test_market_wide_streams():
    assert validate_market_wide("!markPrice@arr@1s") == "!markPrice@arr@1s"
    with pytest.raises(ValueError):
        validate_market_wide("!ticker@arr@1s")


def test_usdm_routes_book_streams_to_public_and_the_rest_to_market():
    public = [
        "btcusdt@depth@100ms",
        "btcusdt@depth5",
        "btcusdt@bookTicker",
        "!bookTicker",
        "btcusdt@rpiDepth@500ms",
    ]
    market = [
        "btcusdt@aggTrade",
        "btcusdt@markPrice@1s",
        "!markPrice@arr",
        "!forceOrder@arr",
        "tradingSession",
    ]
    assert {usdm_route(s) for s in public} == {"/public"}
    assert {usdm_route(s) for s in market} == {"/market"}


def test_timezone_klines_survive_the_query_string():
    assert combined_path(["btcusdt@kline_1m@+08:00"]) == "/stream?streams=btcusdt@kline_1m@%2B08:00"
