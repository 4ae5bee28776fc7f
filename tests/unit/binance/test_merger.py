"""The merged futures streams (2026-06-30): each contract's record goes to its own market, once."""

from decimal import Decimal
from typing import Any

import orjson
import pytest

from gateway.binance.events.base import as_decimal
from gateway.binance.events.books import BookTicker, DepthUpdate
from gateway.binance.events.derivatives import ContractInfo, MarkPrice
from gateway.binance.events.tickers import MiniTicker, Ticker
from gateway.binance.events.trades import AggTrade, ForceOrder
from gateway.binance.markets import Market
from gateway.binance.merger import left_to_other_market, merged_channels, other_market_kinds
from gateway.binance.messages import FrameParser
from gateway.errors import MessageParseError
from tests.unit.avro_support import roundtrip
from tests.vectors import vector

# The kinds that carry "st" (symbol type) since the futures streams merged.
MERGED_KINDS = (
    AggTrade,
    BookTicker,
    ForceOrder,
    MarkPrice,
    MiniTicker,
    Ticker,
    DepthUpdate,
    ContractInfo,
)

USDM = FrameParser(Market.USDM)
COINM = FrameParser(Market.COINM)


def frame(payload: object, stream: str | None = None) -> bytes:
    return orjson.dumps({"stream": stream, "data": payload} if stream else payload)


def with_st(payload: dict[str, Any], st: int, **changes: object) -> dict[str, Any]:
    return payload | {"st": st} | changes


def test_a_coinm_contract_on_the_usdm_connection_goes_to_the_coinm_topics() -> None:
    ticker = with_st(vector("usdm/bookTicker_all.merged.json"), 2, s="BTCUSD_PERP", ps="BTCUSD")
    [event] = USDM.parse(frame(ticker, "!bookTicker"), 1)
    assert isinstance(event, BookTicker)
    assert (event.market, event.schema_group, event.symbol_type) == ("coinm", "coinm", 2)
    assert event.pair == "BTCUSD"
    assert roundtrip(event)["symbol_type"] == 2


def test_a_usdm_contract_on_the_coinm_connection_goes_to_the_usdm_topics() -> None:
    [event] = COINM.parse(frame(vector("usdm/contractInfo.merged.json"), "!contractInfo"), 1)
    assert isinstance(event, ContractInfo)
    assert (event.market, event.symbol_type) == ("usdm", 1)


def test_without_st_a_record_stays_in_its_connection_market() -> None:
    [event] = COINM.parse(frame(vector("coinm/bookTicker_all.json"), "!bookTicker"), 1)
    assert isinstance(event, BookTicker)
    assert (event.market, event.symbol_type) == ("coinm", None)


def test_st_is_typed_on_every_merged_kind_and_not_left_in_extra() -> None:
    names = [
        "usdm/aggTrade.merged.json",
        "usdm/bookTicker_all.merged.json",
        "usdm/forceOrder_arr.merged.json",
        "usdm/markPrice_arr.merged.json",
        "usdm/miniTicker_arr.merged.json",
        "usdm/ticker_arr.merged.json",
        "usdm/depth_diff.merged.json",
        "usdm/contractInfo.merged.json",
    ]
    for name in names:
        events = USDM.parse(orjson.dumps(vector(name)), 1)
        assert events, name
        for event in events:
            assert isinstance(event, MERGED_KINDS), name
            assert event.symbol_type == 1, name
            assert "st" not in event.extra and "ps" not in event.extra, (name, event.extra)


def test_an_unknown_symbol_type_is_dead_lettered_not_guessed() -> None:
    payload = with_st(vector("usdm/bookTicker_all.merged.json"), 3)
    with pytest.raises(MessageParseError, match="unknown symbol type st=3"):
        USDM.parse(frame(payload, "!bookTicker"), 1)


def test_usdm_mark_price_moving_average_is_typed() -> None:
    [event] = USDM.parse(orjson.dumps(vector("usdm/markPrice.merged.json")), 1)
    assert isinstance(event, MarkPrice)
    payload = vector("usdm/markPrice.merged.json")
    assert event.mark_price_moving_average is not None
    assert as_decimal(event.mark_price_moving_average) == Decimal(payload["ap"])
    assert roundtrip(event)["mark_price_moving_average"] == Decimal(payload["ap"])


def test_force_order_takes_its_pair_from_beside_o_since_the_integration() -> None:
    [event] = USDM.parse(frame(vector("usdm/forceOrder_arr.merged.json"), "!forceOrder@arr"), 1)
    assert isinstance(event, ForceOrder)
    assert (event.pair, event.symbol_type) == ("BTCUSDT", 1)
    [old] = COINM.parse(orjson.dumps(vector("coinm/forceOrder_arr.json")), 1)
    assert isinstance(old, ForceOrder)
    assert old.pair == "BTCUSD"  # COIN-M's older form: "ps" inside "o"


def test_contract_info_without_ps_is_a_record_with_a_null_pair() -> None:
    # Issue 13: Binance sends !contractInfo without "ps"; it used to be dead-lettered.
    [event] = USDM.parse(frame(vector("usdm/contractInfo.merged.json"), "!contractInfo"), 1)
    assert isinstance(event, ContractInfo)
    assert event.pair is None
    record = roundtrip(event)
    assert record["pair"] is None
    assert record["symbol"] == "IOTAUSDT"
    old = vector("usdm/contractInfo.json")
    del old["ps"]
    [event] = USDM.parse(frame(old, "!contractInfo"), 1)
    assert isinstance(event, ContractInfo)
    assert event.pair is None and event.symbol_type is None


def test_both_markets_subscribing_a_merged_stream_leave_each_contract_to_its_own_market() -> None:
    market_wide = {
        Market.USDM: ("!bookTicker", "!markPrice@arr@1s", "!assetIndex@arr"),
        Market.COINM: ("!bookTicker", "!markPrice@arr", "!contractInfo"),
    }
    assert left_to_other_market(Market.USDM, market_wide) == {"!bookTicker", "!markPrice"}
    assert left_to_other_market(Market.COINM, market_wide) == {"!bookTicker", "!markPrice"}
    assert left_to_other_market(Market.USDM, {Market.USDM: ("!bookTicker",)}) == frozenset()
    assert left_to_other_market(Market.SPOT, market_wide) == frozenset()


def test_a_shared_merged_stream_publishes_each_contract_once_over_both_connections() -> None:
    um = with_st(vector("usdm/miniTicker_arr.merged.json")[0], 1, s="BTCUSDT")
    cm = with_st(vector("usdm/miniTicker_arr.merged.json")[0], 2, s="BTCUSD_PERP", ps="BTCUSD")
    merged_frame = frame([um, cm], "!miniTicker@arr")  # what both connections receive
    shared = frozenset({"!miniTicker"})
    usdm = FrameParser(Market.USDM, left_to_other_market=shared)
    coinm = FrameParser(Market.COINM, left_to_other_market=shared)
    published = [
        (e.market, e.symbol)
        for p in (usdm, coinm)
        for e in p.parse(merged_frame, 1)
        if isinstance(e, MiniTicker)
    ]
    assert sorted(published) == [("coinm", "BTCUSD_PERP"), ("usdm", "BTCUSDT")]
    # Alone on its market, a connection routes every contract of the stream to its market.
    alone = [(e.market, e.symbol) for e in USDM.parse(merged_frame, 1) if isinstance(e, MiniTicker)]
    assert alone == [("usdm", "BTCUSDT"), ("coinm", "BTCUSD_PERP")]


def test_a_stream_outside_the_shared_set_keeps_every_contract() -> None:
    cm = with_st(vector("usdm/bookTicker_all.merged.json"), 2, s="BTCUSD_PERP")
    parser = FrameParser(Market.USDM, left_to_other_market=frozenset({"!miniTicker"}))
    [event] = parser.parse(frame(cm, "!bookTicker"), 1)
    assert isinstance(event, BookTicker)
    assert event.market == "coinm"


def test_merged_streams_name_the_other_market_topics_a_gateway_writes() -> None:
    assert merged_channels(["!ticker@arr", "!assetIndex@arr", "btcusdt@aggTrade"]) == {"!ticker"}
    assert other_market_kinds(Market.USDM, ["!contractInfo", "!markPrice@arr@1s"]) == {
        ("coinm", "contract_info"),
        ("coinm", "mark_price"),
    }
    assert other_market_kinds(Market.COINM, ["!bookTicker"]) == {("usdm", "book_ticker")}
    assert other_market_kinds(Market.SPOT, ["!miniTicker@arr"]) == set()
