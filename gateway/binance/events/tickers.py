"""Statistics: 24-hour mini and full tickers, rolling-window tickers, average and reference price.

Spot and futures tickers share one record shape; fields only one market sends are optional, and
each market's parser demands exactly what that market documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import ClassVar

from gateway.binance.events.base import (
    Context,
    Fields,
    Payload,
    Publishable,
    Scaled,
    contract_market,
    event_class,
    integer,
    optional,
    scaled,
    scaled_or_null,
    symbol_type,
    text,
    time_us,
)


@event_class
class MiniTicker(Publishable):
    """Rolling 24-hour OHLC and volume (``<symbol>@miniTicker``, ``!miniTicker@arr``)."""

    KIND: ClassVar[str] = "mini_ticker"

    market: str
    symbol: str
    pair: str | None
    event_time_us: int
    last_price: Scaled
    open_price: Scaled
    high_price: Scaled
    low_price: Scaled
    volume: Scaled
    quote_volume: Scaled
    symbol_type: int | None = field(default=None, kw_only=True)
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class Ticker(Publishable):
    """Rolling 24-hour statistics (``<symbol>@ticker``, futures ``!ticker@arr``)."""

    KIND: ClassVar[str] = "ticker"

    market: str
    symbol: str
    pair: str | None
    event_time_us: int
    price_change: Scaled
    price_change_percent: Scaled
    weighted_average_price: Scaled
    price_before_window: Scaled | None
    last_price: Scaled
    last_quantity: Scaled
    best_bid_price: Scaled | None
    best_bid_quantity: Scaled | None
    best_ask_price: Scaled | None
    best_ask_quantity: Scaled | None
    open_price: Scaled
    high_price: Scaled
    low_price: Scaled
    volume: Scaled
    quote_volume: Scaled
    open_time_us: int
    close_time_us: int
    first_trade_id: int
    last_trade_id: int
    trade_count: int
    symbol_type: int | None = field(default=None, kw_only=True)
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class RollingTicker(Publishable):
    """Spot rolling-window statistics (``<symbol>@ticker_<1h|4h|1d>``, ``!ticker_<w>@arr``)."""

    KIND: ClassVar[str] = "rolling_ticker"

    market: str
    symbol: str
    window: str
    event_time_us: int
    price_change: Scaled
    price_change_percent: Scaled
    open_price: Scaled
    high_price: Scaled
    low_price: Scaled
    last_price: Scaled
    weighted_average_price: Scaled
    volume: Scaled
    quote_volume: Scaled
    open_time_us: int
    close_time_us: int
    first_trade_id: int
    last_trade_id: int
    trade_count: int
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class AvgPrice(Publishable):
    """Spot average price over an interval (``<symbol>@avgPrice``)."""

    KIND: ClassVar[str] = "avg_price"

    market: str
    symbol: str
    event_time_us: int
    interval: str
    average_price: Scaled
    last_trade_time_us: int
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@event_class
class ReferencePrice(Publishable):
    """Spot reference price (``<symbol>@referencePrice``); Binance sends no event time."""

    KIND: ClassVar[str] = "reference_price"
    TIME_FIELD: ClassVar[str] = "engine_time_us"

    market: str
    symbol: str
    reference_price: Scaled | None
    engine_time_us: int
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


_MINI_TICKER = Fields()
_SPOT_TICKER = Fields()
_FUTURES_TICKER = Fields()
_ROLLING_TICKER = Fields()
_AVG_PRICE = Fields()
_REFERENCE_PRICE = Fields()


def parse_mini_ticker(payload: Payload, ctx: Context) -> MiniTicker:
    payload = _MINI_TICKER.view(payload)
    kind = symbol_type(payload)
    return MiniTicker(
        market=contract_market(kind, ctx),
        symbol=text(payload["s"], "s"),
        pair=optional(payload, "ps", text),
        event_time_us=time_us(payload["E"], "E", ctx),
        last_price=scaled(payload["c"], "c"),
        open_price=scaled(payload["o"], "o"),
        high_price=scaled(payload["h"], "h"),
        low_price=scaled(payload["l"], "l"),
        volume=scaled(payload["v"], "v"),
        quote_volume=scaled(payload["q"], "q"),
        symbol_type=kind,
        received_at_us=ctx.received_at_us,
        extra=_MINI_TICKER.unread(payload),
    )


_SpotOnly = tuple[Scaled | None, Scaled | None, Scaled | None, Scaled | None, Scaled | None]


def _ticker(payload: Payload, ctx: Context, spot_only: _SpotOnly, fields: Fields) -> Ticker:
    before_window, bid_price, bid_quantity, ask_price, ask_quantity = spot_only
    kind = symbol_type(payload)
    return Ticker(
        market=contract_market(kind, ctx),
        symbol=text(payload["s"], "s"),
        pair=optional(payload, "ps", text),
        event_time_us=time_us(payload["E"], "E", ctx),
        price_change=scaled(payload["p"], "p"),
        price_change_percent=scaled(payload["P"], "P"),
        weighted_average_price=scaled(payload["w"], "w"),
        price_before_window=before_window,
        last_price=scaled(payload["c"], "c"),
        last_quantity=scaled(payload["Q"], "Q"),
        best_bid_price=bid_price,
        best_bid_quantity=bid_quantity,
        best_ask_price=ask_price,
        best_ask_quantity=ask_quantity,
        open_price=scaled(payload["o"], "o"),
        high_price=scaled(payload["h"], "h"),
        low_price=scaled(payload["l"], "l"),
        volume=scaled(payload["v"], "v"),
        quote_volume=scaled(payload["q"], "q"),
        open_time_us=time_us(payload["O"], "O", ctx),
        close_time_us=time_us(payload["C"], "C", ctx),
        first_trade_id=integer(payload["F"], "F"),
        last_trade_id=integer(payload["L"], "L"),
        trade_count=integer(payload["n"], "n"),
        symbol_type=kind,
        received_at_us=ctx.received_at_us,
        extra=fields.unread(payload),
    )


def parse_spot_ticker(payload: Payload, ctx: Context) -> Ticker:
    # Spot also sends the price before the window and the best bid/ask; futures do not.
    payload = _SPOT_TICKER.view(payload)
    spot_only = (
        scaled(payload["x"], "x"),
        scaled(payload["b"], "b"),
        scaled(payload["B"], "B"),
        scaled(payload["a"], "a"),
        scaled(payload["A"], "A"),
    )
    return _ticker(payload, ctx, spot_only, _SPOT_TICKER)


_NO_SPOT_FIELDS: _SpotOnly = (None, None, None, None, None)


def parse_futures_ticker(payload: Payload, ctx: Context) -> Ticker:
    return _ticker(_FUTURES_TICKER.view(payload), ctx, _NO_SPOT_FIELDS, _FUTURES_TICKER)


def parse_rolling_ticker(payload: Payload, ctx: Context) -> RollingTicker:
    payload = _ROLLING_TICKER.view(payload)
    event_type = text(payload["e"], "e")
    return RollingTicker(
        market=ctx.market,
        symbol=text(payload["s"], "s"),
        window=event_type.removesuffix("Ticker"),  # "1hTicker" -> "1h"
        event_time_us=time_us(payload["E"], "E", ctx),
        price_change=scaled(payload["p"], "p"),
        price_change_percent=scaled(payload["P"], "P"),
        open_price=scaled(payload["o"], "o"),
        high_price=scaled(payload["h"], "h"),
        low_price=scaled(payload["l"], "l"),
        last_price=scaled(payload["c"], "c"),
        weighted_average_price=scaled(payload["w"], "w"),
        volume=scaled(payload["v"], "v"),
        quote_volume=scaled(payload["q"], "q"),
        open_time_us=time_us(payload["O"], "O", ctx),
        close_time_us=time_us(payload["C"], "C", ctx),
        first_trade_id=integer(payload["F"], "F"),
        last_trade_id=integer(payload["L"], "L"),
        trade_count=integer(payload["n"], "n"),
        received_at_us=ctx.received_at_us,
        extra=_ROLLING_TICKER.unread(payload),
    )


def parse_avg_price(payload: Payload, ctx: Context) -> AvgPrice:
    payload = _AVG_PRICE.view(payload)
    return AvgPrice(
        market=ctx.market,
        symbol=text(payload["s"], "s"),
        event_time_us=time_us(payload["E"], "E", ctx),
        interval=text(payload["i"], "i"),
        average_price=scaled(payload["w"], "w"),
        last_trade_time_us=time_us(payload["T"], "T", ctx),
        received_at_us=ctx.received_at_us,
        extra=_AVG_PRICE.unread(payload),
    )


def parse_reference_price(payload: Payload, ctx: Context) -> ReferencePrice:
    payload = _REFERENCE_PRICE.view(payload)
    return ReferencePrice(
        market=ctx.market,
        symbol=text(payload["s"], "s"),
        reference_price=scaled_or_null(payload["r"], "r"),
        engine_time_us=time_us(payload["t"], "t", ctx),
        received_at_us=ctx.received_at_us,
        extra=_REFERENCE_PRICE.unread(payload),
    )
