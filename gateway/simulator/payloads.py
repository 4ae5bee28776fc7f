"""Binance's JSON payloads, built by the simulator itself from engine records.

This module is the simulator's half of the wire contract (FACTS.md §3 and the vectors): it never
borrows the gateway's parser or record code, so a misunderstanding of the format cannot hide in
both. Keys appear in the documented order; decimals are strings with exactly 8 decimals built
from integers, never from floats.
"""

from __future__ import annotations

import enum
from typing import Any

import orjson

from gateway.simulator.engine import UNITS_PER_WHOLE, AggTrade, Trade

Payload = dict[str, Any]


class TimeUnit(enum.Enum):
    """The unit of every time field, chosen per connection with ``timeUnit`` (ms by default)."""

    MILLISECOND = "MILLISECOND"
    MICROSECOND = "MICROSECOND"

    @classmethod
    def parse(cls, text: str) -> TimeUnit:
        """Accept ``MILLISECOND|millisecond|MICROSECOND|microsecond`` (FACTS §1.1).

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


def format_decimal(units: int) -> str:
    """Render ``units`` of 1e-8 as Binance spot does: ``"0.00100000"``, exactly 8 decimals."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), UNITS_PER_WHOLE)
    return f"{sign}{whole}.{fraction:08d}"


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
