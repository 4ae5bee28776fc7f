"""Binance's JSON payloads, built by the simulator itself from engine records.

This module is the simulator's half of the wire contract (docs/binance.md §3 and the vectors): it never
borrows the gateway's parser or record code, so a misunderstanding of the format cannot hide in
both. Keys appear in the documented order; decimals are strings with exactly 8 decimals built
from integers, never from floats.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import orjson

from gateway.simulator.engine import UNITS_PER_WHOLE, AggTrade, SymbolSpec, Trade
from gateway.simulator.markets import Market

Payload = dict[str, Any]


class TimeUnit(enum.Enum):
    """The unit of every time field, chosen per connection with ``timeUnit`` (ms by default)."""

    MILLISECOND = "MILLISECOND"
    MICROSECOND = "MICROSECOND"

    @classmethod
    def parse(cls, text: str) -> TimeUnit:
        """Accept ``MILLISECOND|millisecond|MICROSECOND|microsecond`` (docs/binance.md §1.1).

        Raises:
            ValueError: for any other spelling.
        """
        for unit in cls:
            if text in (unit.value, unit.value.lower()):
                return unit
        raise ValueError(f"unknown time unit {text!r}")

    def convert(self, time_us: int) -> int:
        """Express a time in microseconds in this unit (milliseconds truncate)."""
        return time_us if self is TimeUnit.MICROSECOND else time_us // 1_000


def format_decimal(units: int, decimals: int = 8) -> str:
    """Render ``units`` of 1e-8 with ``decimals`` decimals, truncating.

    Spot always shows 8 (``"0.00100000"``); futures show the precision of the tick or lot
    (``"9643.5"``, ``"2"``).
    """
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), UNITS_PER_WHOLE)
    if decimals >= 8:
        return f"{sign}{whole}.{fraction:08d}"
    if decimals <= 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction // 10 ** (8 - decimals):0{decimals}d}"


def price_text(spec: SymbolSpec, units: int) -> str:
    """A price with the symbol's precision."""
    return format_decimal(units, spec.price_decimals)


def qty_text(spec: SymbolSpec, units: int) -> str:
    """A quantity with the symbol's precision."""
    return format_decimal(units, spec.qty_decimals)


def trade_payload(trade: Trade, unit: TimeUnit = TimeUnit.MILLISECOND) -> Payload:
    """The ``<symbol>@trade`` payload (keys ``e E s t p q T m M``)."""
    return {
        "e": "trade",
        "E": unit.convert(trade.event_time_us),
        "s": trade.symbol,
        "t": trade.trade_id,
        "p": format_decimal(trade.price),
        "q": format_decimal(trade.quantity),
        "T": unit.convert(trade.trade_time_us),
        "m": trade.buyer_is_maker,
        # "Ignore" in the docs; always true in Binance's examples.
        "M": True,
    }


def futures_trade_payload(
    spec: SymbolSpec, trade: Trade, unit: TimeUnit = TimeUnit.MILLISECOND
) -> Payload:
    """USDⓈ-M / COIN-M ``<symbol>@trade``, which Binance serves without documenting it (keys
    ``e E T s t p q X m`` as peers captured it: no ``M``; ``X`` is ``MARKET`` for an order-book
    trade, the only kind this simulator makes)."""
    return {
        "e": "trade",
        "E": unit.convert(trade.event_time_us),
        "T": unit.convert(trade.trade_time_us),
        "s": trade.symbol,
        "t": trade.trade_id,
        "p": price_text(spec, trade.price),
        "q": qty_text(spec, trade.quantity),
        "X": "MARKET",
        "m": trade.buyer_is_maker,
    }


def agg_trade_payload(agg: AggTrade, unit: TimeUnit = TimeUnit.MILLISECOND) -> Payload:
    """The ``<symbol>@aggTrade`` payload (keys ``e E s a p q f l T m M``)."""
    return {
        "e": "aggTrade",
        "E": unit.convert(agg.event_time_us),
        "s": agg.symbol,
        "a": agg.agg_trade_id,
        "p": format_decimal(agg.price),
        "q": format_decimal(agg.quantity),
        "f": agg.first_trade_id,
        "l": agg.last_trade_id,
        "T": unit.convert(agg.trade_time_us),
        "m": agg.buyer_is_maker,
        "M": True,
    }


def usdm_agg_trade_payload(
    spec: SymbolSpec, agg: AggTrade, unit: TimeUnit = TimeUnit.MILLISECOND
) -> Payload:
    """USDⓈ-M ``<symbol>@aggTrade`` (keys ``e E s a p q nq f l T m``; no ``M``).

    ``nq`` excludes RPI fills; the simulator has no RPI orders, so it equals ``q``.
    """
    quantity = qty_text(spec, agg.quantity)
    return {
        "e": "aggTrade",
        "E": unit.convert(agg.event_time_us),
        "s": agg.symbol,
        "a": agg.agg_trade_id,
        "p": price_text(spec, agg.price),
        "q": quantity,
        "nq": quantity,
        "f": agg.first_trade_id,
        "l": agg.last_trade_id,
        "T": unit.convert(agg.trade_time_us),
        "m": agg.buyer_is_maker,
    }


def coinm_agg_trade_payload(
    spec: SymbolSpec, agg: AggTrade, unit: TimeUnit = TimeUnit.MILLISECOND
) -> Payload:
    """COIN-M ``<symbol>@aggTrade`` (keys ``e E a s p q f l T m``, in the docs' order)."""
    return {
        "e": "aggTrade",
        "E": unit.convert(agg.event_time_us),
        "a": agg.agg_trade_id,
        "s": agg.symbol,
        "p": price_text(spec, agg.price),
        "q": qty_text(spec, agg.quantity),
        "f": agg.first_trade_id,
        "l": agg.last_trade_id,
        "T": unit.convert(agg.trade_time_us),
        "m": agg.buyer_is_maker,
    }


def spot_agg_trade_payload(
    spec: SymbolSpec, agg: AggTrade, unit: TimeUnit = TimeUnit.MILLISECOND
) -> Payload:
    """Spot ``<symbol>@aggTrade`` with the spec-first signature of the futures builders."""
    return agg_trade_payload(agg, unit)


def agg_trade_builder(market: Market) -> Callable[[SymbolSpec, AggTrade, TimeUnit], Payload]:
    """The ``@aggTrade`` payload builder of ``market``."""
    return {
        Market.SPOT: spot_agg_trade_payload,
        Market.USDM: usdm_agg_trade_payload,
        Market.COINM: coinm_agg_trade_payload,
    }[market]


def futures_rest_agg_trade(
    spec: SymbolSpec, agg: AggTrade, unit: TimeUnit = TimeUnit.MILLISECOND
) -> Payload:
    """One element of ``GET /fapi/v1/aggTrades`` (keys ``a p q f l T m``)."""
    return {
        "a": agg.agg_trade_id,
        "p": price_text(spec, agg.price),
        "q": qty_text(spec, agg.quantity),
        "f": agg.first_trade_id,
        "l": agg.last_trade_id,
        "T": unit.convert(agg.trade_time_us),
        "m": agg.buyer_is_maker,
    }


def futures_rest_trade(
    spec: SymbolSpec, trade: Trade, unit: TimeUnit = TimeUnit.MILLISECOND
) -> Payload:
    """One element of ``GET /fapi/v1/trades`` (``id price qty quoteQty time isBuyerMaker``)."""
    return {
        "id": trade.trade_id,
        "price": price_text(spec, trade.price),
        "qty": qty_text(spec, trade.quantity),
        "quoteQty": format_decimal(trade.price * trade.quantity // UNITS_PER_WHOLE),
        "time": unit.convert(trade.trade_time_us),
        "isBuyerMaker": trade.buyer_is_maker,
    }


def rest_agg_trade(agg: AggTrade, unit: TimeUnit = TimeUnit.MILLISECOND) -> Payload:
    """One element of ``GET /api/v3/aggTrades`` (keys ``a p q f l T m M``)."""
    return {
        "a": agg.agg_trade_id,
        "p": format_decimal(agg.price),
        "q": format_decimal(agg.quantity),
        "f": agg.first_trade_id,
        "l": agg.last_trade_id,
        "T": unit.convert(agg.trade_time_us),
        "m": agg.buyer_is_maker,
        "M": True,
    }


def rest_trade(trade: Trade, unit: TimeUnit = TimeUnit.MILLISECOND) -> Payload:
    """One element of ``GET /api/v3/trades`` and ``/historicalTrades``.

    ``quoteQty`` is ``price * qty`` truncated to 8 decimals.
    """
    return {
        "id": trade.trade_id,
        "price": format_decimal(trade.price),
        "qty": format_decimal(trade.quantity),
        "quoteQty": format_decimal(trade.price * trade.quantity // UNITS_PER_WHOLE),
        "time": unit.convert(trade.trade_time_us),
        "isBuyerMaker": trade.buyer_is_maker,
        "isBestMatch": True,
    }


def encode(payload: object) -> bytes:
    """JSON bytes, compact like Binance's frames."""
    return orjson.dumps(payload)


def combined_frame(stream: str, raw: bytes) -> bytes:
    """Wrap an encoded payload as ``{"stream":"<name>","data":<payload>}`` without re-encoding."""
    return b'{"stream":' + encode(stream) + b',"data":' + raw + b"}"
