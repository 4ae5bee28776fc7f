from decimal import Decimal

import orjson
import pytest

from gateway.binance.events.base import Price, as_decimal
from gateway.binance.events.klines import ContinuousKline, Kline
from gateway.binance.kline_recovery import KlineSeries
from gateway.binance.markets import Market
from gateway.binance.messages import FrameParser
from gateway.binance.rest_payloads import (
    agg_trades_call,
    depth_call,
    historical_trades_call,
    parse_agg_trade_rows,
    parse_depth_body,
    parse_kline_rows,
    parse_trade_rows,
    recent_trades_call,
)
from gateway.errors import RestAnswerError
from tests.vectors import vector


def test_calls_carry_binances_paths_and_weights() -> None:
    call = agg_trades_call(Market.SPOT, "BTCUSDT", 41, limit=5000)
    assert (call.path, call.weight, call.params) == (
        "/api/v3/aggTrades", 4, {"symbol": "BTCUSDT", "fromId": "41", "limit": "1000"},
    )  # fmt: skip
    assert agg_trades_call(Market.USDM, "BTCUSDT", 1).path == "/fapi/v1/aggTrades"
    assert agg_trades_call(Market.COINM, "BTCUSD_PERP", 1).weight == 20
    assert historical_trades_call(Market.SPOT, "BTCUSDT", 7).weight == 25
    # Futures: historicalTrades weighs 200 (SDK 17.0.0) and wants a key; trades weighs 5.
    futures = historical_trades_call(Market.USDM, "BTCUSDT", 7)
    assert (futures.path, futures.weight, futures.params["limit"]) == (
        "/fapi/v1/historicalTrades", 200, "500",
    )  # fmt: skip
    assert (
        historical_trades_call(Market.COINM, "BTCUSD_PERP", 7).path == "/dapi/v1/historicalTrades"
    )
    recent = recent_trades_call(Market.COINM, "BTCUSD_PERP")
    assert (recent.path, recent.weight, recent.params) == (
        "/dapi/v1/trades", 5, {"symbol": "BTCUSD_PERP", "limit": "500"},
    )  # fmt: skip
    with pytest.raises(ValueError):
        recent_trades_call(Market.SPOT, "BTCUSDT")


def test_futures_trade_rows_are_order_book_trades() -> None:
    rows = [{"id": 28457, "price": "4.00000100", "qty": "12.00000000", "quoteQty": "48.00",
             "time": 1499865549590, "isBuyerMaker": True, "isRPITrade": False}]  # fmt: skip
    [event] = parse_trade_rows(rows, Market.USDM, "BTCUSDT", received_at_us=9)
    assert (event.trade_id, event.trade_type, event.best_match) == (28457, "MARKET", None)
    assert event.extra == {"isRPITrade": "false"}  # kept, as every field the stream lacks
    [spot] = parse_trade_rows(rows[:1], Market.SPOT, "BTCUSDT", received_at_us=9)
    assert spot.trade_type is None


@pytest.mark.parametrize("market", [Market.SPOT, Market.USDM])
def test_agg_trade_rows_become_the_events_the_stream_carries(market: Market) -> None:
    rows = vector(f"{market.value}/rest_aggTrades.json")
    [event] = parse_agg_trade_rows(rows, market, "BNBBTC", received_at_us=9)
    assert (event.agg_trade_id, event.first_trade_id, event.last_trade_id) == (26129, 27781, 27781)
    assert as_decimal(event.price) == Decimal("0.01633102")
    assert event.event_time_us == event.trade_time_us == 1498793709153000
    assert (event.symbol, event.market, event.received_at_us, event.extra) == (
        "BNBBTC",
        market.value,
        9,
        {},
    )


def test_trade_rows_map_named_fields_and_drop_the_derived_quote_quantity() -> None:
    rows = [{"id": 28457, "price": "4.00000100", "qty": "12.00000000", "quoteQty": "48.000012",
             "time": 1499865549590, "isBuyerMaker": True, "isBestMatch": True}]  # fmt: skip
    [event] = parse_trade_rows(rows, Market.SPOT, "BTCUSDT", received_at_us=1)
    assert (event.trade_id, as_decimal(event.price), as_decimal(event.quantity)) == (
        28457,
        Decimal("4.00000100"),
        Decimal("12"),
    )
    assert (event.buyer_is_maker, event.best_match, event.extra) == (True, True, {})


def exact(value: Price) -> Decimal:
    return value if isinstance(value, Decimal) else as_decimal(value)


@pytest.mark.parametrize("market", [Market.SPOT, Market.USDM])
def test_depth_answers_become_book_snapshots(market: Market) -> None:
    body = vector(f"{market.value}/rest_depth.json")
    snapshot = parse_depth_body(body, market, "BTCUSDT", received_at_us=5, reason="initial")
    assert snapshot.last_update_id == body["lastUpdateId"]
    assert [(exact(level.price), exact(level.quantity)) for level in snapshot.bids] == [
        (Decimal(p), Decimal(q)) for p, q in body["bids"]
    ]
    assert (snapshot.symbol, snapshot.reason, snapshot.extra) == ("BTCUSDT", "initial", {})
    call = depth_call(market, "BTCUSDT")
    assert call.weight == (50 if market is Market.SPOT else 20)
    with pytest.raises(ValueError):
        depth_call(market, "BTCUSDT", limit=7)


@pytest.mark.parametrize(
    "body", [{"code": -1121, "msg": "Invalid symbol."}, "<html>", None, 7, {"lastUpdateId": "x"}]
)
def test_answers_of_the_wrong_shape_raise_rest_answer_errors(body: object) -> None:
    from gateway.errors import RestAnswerError

    with pytest.raises(RestAnswerError):
        parse_agg_trade_rows(body, Market.SPOT, "BTCUSDT", 1, rejected=[])
    with pytest.raises(RestAnswerError):
        parse_trade_rows(body, Market.SPOT, "BTCUSDT", 1, rejected=[])
    with pytest.raises(RestAnswerError):
        parse_depth_body(body, Market.SPOT, "BTCUSDT", 1, reason="initial")


def test_bad_rows_are_left_out_with_their_reason() -> None:
    good = vector("spot/rest_aggTrades.json")[0]
    rejected: list[str] = []
    body = [good, {**good, "a": "x"}, [], {**good, "p": None}, {"a": 1}]
    events = parse_agg_trade_rows(body, Market.SPOT, "BNBBTC", 1, rejected=rejected)
    assert [e.agg_trade_id for e in events] == [good["a"]]
    assert [r.split(":")[0] for r in rejected] == [f"aggTrades row {i}" for i in (1, 2, 3, 4)]


def test_the_24h_tickers_give_each_symbols_trade_rate_and_skip_what_is_unusable() -> None:
    from gateway.binance.rest_payloads import parse_trade_rates, ticker_24h_call
    from gateway.errors import RestAnswerError

    spot = ticker_24h_call(Market.SPOT)  # every symbol at once (docs/binance.md §7)
    assert (spot.path, spot.weight, spot.params) == ("/api/v3/ticker/24hr", 80, {})
    assert (ticker_24h_call(Market.USDM).path, ticker_24h_call(Market.USDM).weight) == (
        "/fapi/v1/ticker/24hr", 40,
    )  # fmt: skip
    assert ticker_24h_call(Market.COINM).path == "/dapi/v1/ticker/24hr"
    body = [
        {"symbol": "BTCUSDT", "lastPrice": "1.0", "count": 864_000},
        {"symbol": "QUIETUSDT", "count": 0},
        {"symbol": "ODDUSDT", "count": "12"},  # not a number: no prior
        {"count": 5},
        "garbage",
    ]
    assert parse_trade_rates(body) == {"BTCUSDT": 10.0, "QUIETUSDT": 0.0}
    with pytest.raises(RestAnswerError):
        parse_trade_rates({"code": -1003, "msg": "Too many requests"})


# GET /fapi/v1/continuousKlines's example row (Binance's USDⓈ-M REST docs, "Continuous Contract
# Kline/Candlestick Data"); klines rows have the same shape.
KLINE_ROW = [1607444700000, "18879.99", "18900.00", "18878.98", "18896.13", "492.363",
             1607444759999, "9302145.66080", 1874, "385.983", "7292402.33267", "0"]  # fmt: skip


def stream_kline(market: Market, stream: str, data: dict[str, object]) -> object:
    """What the stream's own parser makes of a kline frame: the oracle of a REST row."""
    [event] = FrameParser(market).parse(orjson.dumps({"stream": stream, "data": data}), 7)
    return event


def same_fields(event: object, oracle: object, names: tuple[str, ...]) -> None:
    """Field by field, whatever type the events give prices (Decimal or scaled integers)."""
    assert type(event) is type(oracle)
    for name in names:
        assert getattr(event, name) == getattr(oracle, name), name


_BAR = {"t": KLINE_ROW[0], "T": KLINE_ROW[6], "i": "1m", "f": -1, "L": -1, "o": KLINE_ROW[1],
        "c": KLINE_ROW[4], "h": KLINE_ROW[2], "l": KLINE_ROW[3], "v": KLINE_ROW[5],
        "n": KLINE_ROW[8], "x": True, "q": KLINE_ROW[7], "V": KLINE_ROW[9], "Q": KLINE_ROW[10],
        "B": "0"}  # fmt: skip
_CANDLE = ("interval", "open_time_us", "close_time_us", "open_price", "high_price", "low_price",
           "close_price", "volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume",
           "trade_count", "closed", "event_time_us", "received_at_us", "ignored", "extra")  # fmt: skip


def test_kline_rows_become_the_closed_klines_the_stream_carries_dated_by_their_close() -> None:
    series = KlineSeries("kline", "BTCUSDT", "1m")
    [kline] = parse_kline_rows([KLINE_ROW], Market.SPOT, series, 7)
    assert isinstance(kline, Kline)
    data = {"e": "kline", "E": KLINE_ROW[6], "s": "BTCUSDT", "k": {**_BAR, "s": "BTCUSDT"}}
    oracle = stream_kline(Market.SPOT, "btcusdt@kline_1m", data)
    same_fields(kline, oracle, ("symbol", "timezone", "first_trade_id", "last_trade_id", *_CANDLE))
    assert kline.closed is True
    assert kline.open_time_us == 1607444700000_000
    assert kline.close_time_us == kline.event_time_us == 1607444759999_000
    assert (kline.first_trade_id, kline.last_trade_id, kline.trade_count) == (-1, -1, 1874)


def test_continuous_kline_rows_name_the_pair_and_contract() -> None:
    series = KlineSeries("continuous_kline", "BTCUSDT", "1m", "PERPETUAL")
    [kline] = parse_kline_rows([KLINE_ROW], Market.USDM, series, 7)
    assert isinstance(kline, ContinuousKline)
    data = {"e": "continuous_kline", "E": KLINE_ROW[6], "ps": "BTCUSDT", "ct": "PERPETUAL",
            "k": _BAR}  # fmt: skip
    oracle = stream_kline(Market.USDM, "btcusdt_perpetual@continuousKline_1m", data)
    names = ("pair", "contract_type", "first_update_id", "last_update_id", *_CANDLE)
    same_fields(kline, oracle, names)
    assert (kline.pair, kline.contract_type, kline.closed) == ("BTCUSDT", "PERPETUAL", True)


def test_unusable_kline_rows_are_left_out_with_their_reason() -> None:
    series = KlineSeries("kline", "BTCUSDT", "1m")
    bad_price = [*KLINE_ROW[:1], "one", *KLINE_ROW[2:]]
    rejected: list[str] = []
    rows = [bad_price, KLINE_ROW[:5], {"t": 1}, KLINE_ROW]
    assert len(parse_kline_rows(rows, Market.SPOT, series, 0, rejected=rejected)) == 1
    assert len(rejected) == 3 and rejected[0].startswith("klines row 0:")
    with pytest.raises(RestAnswerError):
        parse_kline_rows({"code": -1121}, Market.SPOT, series, 0)
    with pytest.raises(RestAnswerError, match="klines row 0"):
        parse_kline_rows([bad_price], Market.SPOT, series, 0)
