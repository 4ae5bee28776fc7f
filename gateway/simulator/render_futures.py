"""Payloads of the futures-only streams (docs/binance.md §4; vectors ``usdm/``, ``coinm/``).

Mark, index and settlement prices, funding, liquidations, contract info, composite and asset
indexes, trading sessions, and the continuous / mark-price / index-price klines. The simulator
derives them all from the symbol's book and trades: the index is the mid price, the mark price
sits within a tick of it, and the price klines reuse the trade candles' prices, so every number
is consistent with what the trade streams say.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from gateway.simulator.candles import DAY_MS, HOUR_MS, MINUTE_MS, Candle
from gateway.simulator.engine import SymbolSpec
from gateway.simulator.markets import Market
from gateway.simulator.payloads import Payload, TimeUnit, format_decimal, price_text, qty_text
from gateway.simulator.render_market import kline_body

MS = TimeUnit.MILLISECOND
PERPETUAL_DELIVERY_MS = 4_133_404_800_000
"""``dt`` of perpetual contracts (2100-12-25), as in the contractInfo examples."""
ONBOARD_MS = 1_569_398_400_000
FUNDING_RATE_UNITS = 10_000
"""0.01 % per 8 h, Binance's default funding rate."""
FUNDING_PERIOD_MS = 8 * HOUR_MS
_BRACKETS = (
    {"bs": 1, "bnf": 0, "bnc": 5_000, "mmr": 0.01, "cf": 0, "mi": 21, "ma": 50},
    {"bs": 2, "bnf": 5_000, "bnc": 25_000, "mmr": 0.025, "cf": 75, "mi": 11, "ma": 20},
)
# A simplified US equity day in UTC for the TradFi session stream (start minute, name).
_SESSIONS = ((60, "OVERNIGHT"), (540, "PRE_MARKET"), (870, "REGULAR"), (1_260, "AFTER_MARKET"))


@dataclass(frozen=True, slots=True)
class Prices:
    """A contract's reference prices at one moment (1e-8 units)."""

    mark: int
    index: int
    settle: int


@dataclass(frozen=True, slots=True)
class Liquidation:
    """One liquidation order, as ``@forceOrder`` reports it."""

    symbol: str
    side: str
    quantity: int
    price: int
    average_price: int
    time_us: int


def next_funding_ms(now_ms: int) -> int:
    """The next funding time: every 8 h from midnight UTC."""
    return (now_ms // FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS


def mark_price_payload(
    market: Market, spec: SymbolSpec, prices: Prices, event_time_us: int, unit: TimeUnit = MS
) -> Payload:
    """``<symbol>@markPrice[@1s]`` and the elements of ``!markPrice@arr`` / ``<pair>@markPrice``."""
    now_ms = event_time_us // 1_000
    perpetual = spec.contract_type == "PERPETUAL"
    mark, index, settle = (format_decimal(p) for p in (prices.mark, prices.index, prices.settle))
    head: Payload = {"e": "markPriceUpdate", "E": unit.convert(event_time_us), "s": spec.symbol}
    if market is Market.USDM:
        head |= {"p": mark, "i": index, "P": settle}
    else:
        head |= {"p": mark, "P": settle, "i": index}
    # Delivery contracts have no funding: "" and 0 (docs/binance.md §4).
    rate = format_decimal(FUNDING_RATE_UNITS) if perpetual else ""
    return head | {"r": rate, "T": next_funding_ms(now_ms) if perpetual else 0}


def force_order_payload(
    market: Market, spec: SymbolSpec, liquidation: Liquidation, unit: TimeUnit = MS
) -> Payload:
    """``<symbol>@forceOrder`` / ``!forceOrder@arr`` (one object per message)."""
    order: Payload = {"s": spec.symbol}
    if market is Market.COINM:
        order["ps"] = spec.pair
    quantity = qty_text(spec, liquidation.quantity)
    order |= {
        "S": liquidation.side,
        "o": "LIMIT",
        "f": "IOC",
        "q": quantity,
        "p": price_text(spec, liquidation.price),
        "ap": price_text(spec, liquidation.average_price),
        "X": "FILLED",
        "l": quantity,
        "z": quantity,
        "T": unit.convert(liquidation.time_us),
    }
    return {"e": "forceOrder", "E": unit.convert(liquidation.time_us), "o": order}


def contract_info_payload(
    spec: SymbolSpec, event_time_us: int, unit: TimeUnit = MS, *, status: str = "TRADING"
) -> Payload:
    """``!contractInfo``: a contract's status and leverage brackets."""
    return {
        "e": "contractInfo",
        "E": unit.convert(event_time_us),
        "s": spec.symbol,
        "ps": spec.pair,
        "ct": spec.contract_type or "PERPETUAL",
        "dt": PERPETUAL_DELIVERY_MS,
        "ot": ONBOARD_MS,
        "cs": status,
        "bks": [dict(bracket) for bracket in _BRACKETS],
    }


def composite_index_payload(
    spec: SymbolSpec,
    price: int,
    components: list[tuple[SymbolSpec, int]],
    event_time_us: int,
    unit: TimeUnit = MS,
) -> Payload:
    """USDⓈ-M ``<symbol>@compositeIndex``: the index and its weighted components."""
    total = sum(component_price for _, component_price in components) or 1
    composition = [
        {
            "b": component.base_asset,
            "q": component.quote_asset,
            "w": format_decimal(10**8),  # one unit of each component
            "W": format_decimal(component_price * 10**8 // total),
            "i": format_decimal(component_price),
        }
        for component, component_price in components
    ]
    return {
        "e": "compositeIndex",
        "E": unit.convert(event_time_us),
        "s": spec.symbol,
        "p": format_decimal(price),
        "C": "baseAsset",
        "c": composition,
    }


def asset_index_payload(asset_symbol: str, index: int, event_time_us: int) -> Payload:
    """USDⓈ-M ``!assetIndex@arr`` element / ``<assetSymbol>@assetIndex`` (multi-assets mode)."""
    buffer, auto_buffer = 10**7, 5 * 10**6  # 10 % and 5 % of 1e8
    return {
        "e": "assetIndexUpdate",
        "E": event_time_us // 1_000,
        "s": asset_symbol,
        "i": format_decimal(index),
        "b": format_decimal(buffer),
        "a": format_decimal(buffer),
        "B": format_decimal(index - index * buffer // 10**8),
        "A": format_decimal(index + index * buffer // 10**8),
        "q": format_decimal(auto_buffer),
        "g": format_decimal(auto_buffer),
        "Q": format_decimal(index - index * auto_buffer // 10**8),
        "G": format_decimal(index + index * auto_buffer // 10**8),
    }


def trading_session_payload(event_time_us: int) -> Payload:
    """USDⓈ-M ``tradingSession``: the TradFi session that holds ``event_time_us``."""
    now_ms = event_time_us // 1_000
    day = now_ms // DAY_MS * DAY_MS
    starts = [
        (day + days * DAY_MS + minute * MINUTE_MS, name)
        for days in (-1, 0, 1)
        for minute, name in _SESSIONS
    ]
    for (opened, name), (closed, _) in pairwise(starts):
        if opened <= now_ms < closed:
            return {"e": "EquityUpdate", "E": now_ms, "t": opened, "T": closed, "S": name}
    raise AssertionError("the sessions cover every day")  # pragma: no cover


def index_price_payload(pair: str, index: int, event_time_us: int) -> Payload:
    """COIN-M ``<pair>@indexPrice[@1s]``."""
    return {
        "e": "indexPriceUpdate",
        "E": event_time_us // 1_000,
        "i": pair,
        "p": format_decimal(index),
    }


def continuous_kline_payload(
    spec: SymbolSpec, candle: Candle, interval: str, *, closed: bool, event_time_us: int
) -> Payload:
    """``<pair>_<contractType>@continuousKline_<interval>`` (``k`` has no ``s``)."""
    return {
        "e": "continuous_kline",
        "E": event_time_us // 1_000,
        "ps": spec.pair,
        "ct": spec.contract_type or "PERPETUAL",
        "k": kline_body(spec, candle, interval, closed),
    }


def price_kline_payload(
    spec: SymbolSpec,
    candle: Candle,
    interval: str,
    *,
    index: bool,
    closed: bool,
    event_time_us: int,
) -> Payload:
    """COIN-M ``<symbol>@markPriceKline_<i>`` or ``<pair>@indexPriceKline_<i>``.

    Volumes are meaningless for a price series ("ignore" in the docs, always ``"0"``); ``f`` and
    ``L`` are the first and last sample times; ``n`` counts the samples (here: the trades).
    """
    now_ms = event_time_us // 1_000
    k = {
        "t": candle.open_time_ms,
        "T": candle.close_time_ms,
        "s": "0" if index else spec.symbol,
        "i": interval,
        "f": candle.open_time_ms,
        "L": min(now_ms, candle.close_time_ms),
        "o": format_decimal(candle.open),
        "c": format_decimal(candle.close),
        "h": format_decimal(candle.high),
        "l": format_decimal(candle.low),
        "v": "0",
        "n": candle.trades,
        "x": closed,
        "q": "0",
        "V": "0",
        "Q": "0",
        "B": "0",
    }
    event = "indexPrice_kline" if index else "markPrice_kline"
    return {"e": event, "E": now_ms, "ps": spec.pair, "k": k}
