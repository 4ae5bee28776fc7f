"""Payloads match Binance's documented examples key for key and type for type."""

from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, strategies as st

from gateway.simulator.engine import Fill, MarketEngine, default_symbol_specs
from gateway.simulator.payloads import (
    TimeUnit,
    agg_trade_payload,
    combined_frame,
    encode,
    format_decimal,
    rest_agg_trade,
    rest_trade,
    trade_payload,
)
from tests.vectors import vector

NOW_US = 1_700_000_000_123_456


def a_fill() -> Fill:
    engine = MarketEngine(default_symbol_specs(["BNBBTC"], 0), 0)
    return engine.next_fill("BNBBTC", NOW_US)


def shape(payload: dict[str, Any]) -> dict[str, type]:
    return {key: type(value) for key, value in payload.items()}


def test_trade_payload_has_the_documented_keys_order_and_types() -> None:
    payload = trade_payload(a_fill().trades[0])
    assert list(payload) == list(vector("spot/trade.json"))
    assert shape(payload) == shape(vector("spot/trade.json"))


def test_agg_trade_payload_has_the_documented_keys_order_and_types() -> None:
    payload = agg_trade_payload(a_fill().agg_trade)
    assert list(payload) == list(vector("spot/aggTrade.json"))
    assert shape(payload) == shape(vector("spot/aggTrade.json"))


def test_rest_agg_trade_has_the_documented_keys_and_types() -> None:
    expected = vector("spot/rest_aggTrades.json")[0]
    payload = rest_agg_trade(a_fill().agg_trade)
    assert list(payload) == list(expected)
    assert shape(payload) == shape(expected)


def test_rest_trade_shape() -> None:
    payload = rest_trade(a_fill().trades[0])
    assert shape(payload) == {
        "id": int,
        "price": str,
        "qty": str,
        "quoteQty": str,
        "time": int,
        "isBuyerMaker": bool,
        "isBestMatch": bool,
    }
    assert Decimal(payload["quoteQty"]) == (
        Decimal(payload["price"]) * Decimal(payload["qty"])
    ).quantize(Decimal("1e-8"), rounding="ROUND_DOWN")


def test_combined_frame_wraps_the_raw_payload_like_the_docs() -> None:
    expected = vector("spot/combined_wrapper_example.json")
    raw = encode(expected["data"])
    assert orjson.loads(combined_frame("bnbbtc@aggTrade", raw)) == expected


def test_times_follow_the_connections_unit() -> None:
    fill = a_fill()
    ms = agg_trade_payload(fill.agg_trade)
    us = agg_trade_payload(fill.agg_trade, TimeUnit.MICROSECOND)
    assert us["T"] == NOW_US and ms["T"] == NOW_US // 1_000
    assert us["E"] // 1_000 == ms["E"]
    assert {k: v for k, v in us.items() if k not in "ET"} == {
        k: v for k, v in ms.items() if k not in "ET"
    }


@given(st.integers(min_value=-(10**20), max_value=10**20))
def test_decimals_have_exactly_eight_places_and_the_exact_value(units: int) -> None:
    text = format_decimal(units)
    whole, _, fraction = text.partition(".")
    assert len(fraction) == 8 and whole.lstrip("-").isdigit()
    assert Decimal(text) == Decimal(units) / 10**8


def test_decimal_examples() -> None:
    assert format_decimal(100_000) == "0.00100000"
    assert format_decimal(6_000_001_000_000) == "60000.01000000"
    assert format_decimal(0) == "0.00000000"


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("MICROSECOND", TimeUnit.MICROSECOND),
        ("microsecond", TimeUnit.MICROSECOND),
        ("MILLISECOND", TimeUnit.MILLISECOND),
        ("millisecond", TimeUnit.MILLISECOND),
    ],
)
def test_time_unit_spellings(text: str, unit: TimeUnit) -> None:
    assert TimeUnit.parse(text) is unit


@pytest.mark.parametrize("text", ["Microsecond", "NANOSECOND", "", "us"])
def test_other_time_unit_spellings_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="time unit"):
        TimeUnit.parse(text)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 70_000])
def test_hand_built_frames_match_websockets(size: int) -> None:
    from websockets.frames import Frame, Opcode

    from gateway.simulator.hub import text_frame

    data = b"x" * size
    assert text_frame(data) == Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[])
