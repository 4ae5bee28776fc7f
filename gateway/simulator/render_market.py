"""Payloads of the streams every market has: klines, tickers, book tickers, depth; and spot's own.

Pure functions of a symbol's spec, its candles and its book (docs/binance.md §3, §4; vectors ``spot/``,
``usdm/``, ``coinm/``). Keys are in the documented order. Where the markets differ only by a few
keys (COIN-M adds ``ps``; futures depth adds ``T`` and ``pu``; spot tickers add ``x b B a A``), one
function takes the :class:`~gateway.simulator.markets.Market` and leaves the others out.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.simulator.book import BookSnapshot, DepthDiff, Level, OrderBook
from gateway.simulator.candles import Candle, price_change_percent
from gateway.simulator.engine import UNITS_PER_WHOLE, SymbolSpec
from gateway.simulator.markets import Market
from gateway.simulator.payloads import Payload, TimeUnit, format_decimal, price_text, qty_text

MS = TimeUnit.MILLISECOND


@dataclass(frozen=True, slots=True)
class BlockTrade:
    """A spot block trade: negotiated off the book, so it leaves the book alone."""

    symbol: str
    block_trade_id: int
    price: int
    quantity: int
    trade_time_us: int
    event_time_us: int
    buyer_is_maker: bool


def levels(spec: SymbolSpec, side: tuple[Level, ...]) -> list[list[str]]:
    """``[["price", "qty"], ...]``."""
    return [[price_text(spec, price), qty_text(spec, qty)] for price, qty in side]


def kline_body(spec: SymbolSpec, candle: Candle, interval: str, closed: bool) -> Payload:
    """The ``k`` object of kline events (without ``s``; callers insert it where it belongs)."""
    return {
        "t": candle.open_time_ms,
        "T": candle.close_time_ms,
        "i": interval,
        "f": candle.first_trade_id,
        "L": candle.last_trade_id,
        "o": price_text(spec, candle.open),
        "c": price_text(spec, candle.close),
        "h": price_text(spec, candle.high),
        "l": price_text(spec, candle.low),
        "v": qty_text(spec, candle.volume),
        "n": candle.trades,
        "x": closed,
        "q": format_decimal(candle.quote_volume, spec.price_decimals),
        "V": qty_text(spec, candle.taker_buy_volume),
        "Q": format_decimal(candle.taker_buy_quote_volume, spec.price_decimals),
        "B": "0",
    }


def kline_payload(
    spec: SymbolSpec,
    candle: Candle,
    interval: str,
    *,
    closed: bool,
    event_time_us: int,
    unit: TimeUnit = MS,
) -> Payload:
    """``<symbol>@kline_<interval>`` (every market; ``@+08:00`` only moves the window)."""
    body = kline_body(spec, candle, interval, closed)
    k = {"t": body["t"], "T": body["T"], "s": spec.symbol, **body}
    k["t"], k["T"] = (
        unit.convert(candle.open_time_ms * 1_000),
        unit.convert(candle.close_time_ms * 1_000 + 999),
    )
    return {"e": "kline", "E": unit.convert(event_time_us), "s": spec.symbol, "k": k}


def ms_in(unit: TimeUnit, time_ms: int) -> int:
    """A millisecond time in the connection's unit."""
    return unit.convert(time_ms * 1_000)


def mini_ticker_payload(
    market: Market,
    spec: SymbolSpec,
    candle: Candle,
    last_price: int,
    event_time_us: int,
    unit: TimeUnit = MS,
) -> Payload:
    """``<symbol>@miniTicker`` / elements of ``!miniTicker@arr`` (24 h rolling)."""
    payload: Payload = {"e": "24hrMiniTicker", "E": unit.convert(event_time_us), "s": spec.symbol}
    if market is Market.COINM:
        payload["ps"] = spec.pair
    payload |= {
        "c": price_text(spec, last_price),
        "o": price_text(spec, candle.open),
        "h": price_text(spec, candle.high),
        "l": price_text(spec, candle.low),
        "v": qty_text(spec, candle.volume),
        "q": format_decimal(candle.quote_volume, spec.price_decimals),
    }
    return payload


@dataclass(frozen=True, slots=True)
class TickerInputs:
    """What a ticker is computed from."""

    spec: SymbolSpec
    candle: Candle
    last_price: int
    price_before: int
    book: OrderBook
    event_time_us: int
    unit: TimeUnit = MS


def ticker_payload(market: Market, inputs: TickerInputs, event: str = "24hrTicker") -> Payload:
    """``<symbol>@ticker`` (24 h) or spot's ``<symbol>@ticker_<window>`` (``event`` = ``1hTicker``)."""
    spec, candle = inputs.spec, inputs.candle
    rolling = event != "24hrTicker"
    change = inputs.last_price - candle.open
    unit = inputs.unit
    payload: Payload = {"e": event, "E": unit.convert(inputs.event_time_us), "s": spec.symbol}
    if market is Market.COINM:
        payload["ps"] = spec.pair
    payload |= {"p": price_text(spec, change), "P": price_change_percent(change, candle.open)}
    average = price_text(spec, _weighted_average(candle, inputs.last_price))
    if rolling:
        payload |= _ohlc(spec, candle, inputs.last_price) | {"w": average}
    else:
        payload["w"] = average
        if market is Market.SPOT:
            payload["x"] = price_text(spec, inputs.price_before)
        payload |= {
            "c": price_text(spec, inputs.last_price),
            "Q": qty_text(spec, candle.last_quantity),
        }
        if market is Market.SPOT:
            payload |= _top_of_book(spec, inputs.book)
        payload |= {
            "o": price_text(spec, candle.open),
            "h": price_text(spec, candle.high),
            "l": price_text(spec, candle.low),
        }
    return payload | {
        "v": qty_text(spec, candle.volume),
        "q": format_decimal(candle.quote_volume, spec.price_decimals),
        "O": ms_in(unit, candle.open_time_ms),
        "C": ms_in(unit, candle.close_time_ms),
        "F": candle.first_trade_id,
        "L": candle.last_trade_id,
        "n": candle.trades,
    }


def _ohlc(spec: SymbolSpec, candle: Candle, last_price: int) -> Payload:
    return {
        "o": price_text(spec, candle.open),
        "h": price_text(spec, candle.high),
        "l": price_text(spec, candle.low),
        "c": price_text(spec, last_price),
    }


def _weighted_average(candle: Candle, last_price: int) -> int:
    return candle.quote_volume * UNITS_PER_WHOLE // candle.volume if candle.volume else last_price


def _top_of_book(spec: SymbolSpec, book: OrderBook) -> Payload:
    bid, ask = book.top()
    bid_price, bid_qty = bid or (0, 0)
    ask_price, ask_qty = ask or (0, 0)
    return {
        "b": price_text(spec, bid_price),
        "B": qty_text(spec, bid_qty),
        "a": price_text(spec, ask_price),
        "A": qty_text(spec, ask_qty),
    }


def book_ticker_payload(
    market: Market, spec: SymbolSpec, book: OrderBook, event_time_us: int, unit: TimeUnit = MS
) -> Payload:
    """``<symbol>@bookTicker`` / ``!bookTicker`` (spot has no ``e``/``E``/``T``)."""
    top = _top_of_book(spec, book)
    update_id = book.last_update_id
    if market is Market.SPOT:
        return {"u": update_id, "s": spec.symbol} | top
    time_ms = unit.convert(event_time_us)
    if market is Market.USDM:
        return {
            "e": "bookTicker",
            "u": update_id,
            "E": time_ms,
            "T": time_ms,
            "s": spec.symbol,
        } | top
    head = {"e": "bookTicker", "u": update_id, "s": spec.symbol, "ps": spec.pair}
    return head | top | {"T": time_ms, "E": time_ms}


def depth_diff_payload(
    market: Market, spec: SymbolSpec, diff: DepthDiff, event_time_us: int, unit: TimeUnit = MS
) -> Payload:
    """``<symbol>@depth[@speed]`` (spot ``U u``; futures add ``T`` and ``pu``)."""
    payload: Payload = {"e": "depthUpdate", "E": unit.convert(event_time_us)}
    if market.is_futures:
        payload["T"] = unit.convert(event_time_us)
    payload["s"] = spec.symbol
    if market is Market.COINM:
        payload["ps"] = spec.pair
    payload |= {"U": diff.first_update_id, "u": diff.final_update_id}
    if market.is_futures:
        payload["pu"] = diff.previous_final_update_id
    return payload | {"b": levels(spec, diff.bids), "a": levels(spec, diff.asks)}


def partial_depth_payload(spec: SymbolSpec, snapshot: BookSnapshot) -> Payload:
    """Spot ``<symbol>@depth<levels>[@100ms]``: no event type, no symbol."""
    return {
        "lastUpdateId": snapshot.last_update_id,
        "bids": levels(spec, snapshot.bids),
        "asks": levels(spec, snapshot.asks),
    }


def futures_partial_depth_payload(
    market: Market,
    spec: SymbolSpec,
    snapshot: BookSnapshot,
    ids: tuple[int, int, int],
    event_time_us: int,
    unit: TimeUnit = MS,
) -> Payload:
    """Futures ``<symbol>@depth<levels>[@speed]``: a ``depthUpdate`` holding the top levels."""
    first, final, previous = ids
    diff = DepthDiff(first, final, previous, snapshot.bids, snapshot.asks)
    return depth_diff_payload(market, spec, diff, event_time_us, unit)


def avg_price_payload(
    spec: SymbolSpec,
    candle: Candle,
    last_price: int,
    last_trade_ms: int,
    event_time_us: int,
    unit: TimeUnit = MS,
) -> Payload:
    """Spot ``<symbol>@avgPrice``: the 5-minute average price."""
    return {
        "e": "avgPrice",
        "E": unit.convert(event_time_us),
        "s": spec.symbol,
        "i": "5m",
        "w": price_text(spec, _weighted_average(candle, last_price)),
        "T": ms_in(unit, last_trade_ms),
    }


def reference_price_payload(
    spec: SymbolSpec, price: int | None, time_us: int, unit: TimeUnit = MS
) -> Payload:
    """Spot ``<symbol>@referencePrice``: no ``E``; ``r`` is null without a reference price."""
    return {
        "e": "referencePrice",
        "s": spec.symbol,
        "r": None if price is None else price_text(spec, price),
        "t": unit.convert(time_us),
    }


def block_trade_payload(spec: SymbolSpec, trade: BlockTrade, unit: TimeUnit = MS) -> Payload:
    """Spot ``<symbol>@blockTrade`` (keys ``e E s t p q T m``)."""
    return {
        "e": "blockTrade",
        "E": unit.convert(trade.event_time_us),
        "s": trade.symbol,
        "t": trade.block_trade_id,
        "p": price_text(spec, trade.price),
        "q": qty_text(spec, trade.quantity),
        "T": unit.convert(trade.trade_time_us),
        "m": trade.buyer_is_maker,
    }


def server_shutdown_payload(event_time_us: int, unit: TimeUnit = MS) -> Payload:
    """``serverShutdown``: sent before a maintenance shutdown; clients reconnect at once."""
    return {"e": "serverShutdown", "E": unit.convert(event_time_us)}
