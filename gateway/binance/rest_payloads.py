"""REST requests and answers for backfill, as pure code: what to ask, and the events it yields.

A REST row is turned into the same event the stream would have carried, through the stream's own
parser, so a backfilled trade is field for field the record a live one would have been. The rows
have no event time (``E``); the trade time stands in for it.

Answers are untrusted: a body of the wrong shape raises :class:`RestAnswerError`, and a row that
does not parse is left out (its reason collected in ``rejected``), so its id stays missing and is
fetched again or declared lost, never invented.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import InvalidOperation
from typing import Any, TypeVar

from gateway.binance.events.base import Context, extra, integer
from gateway.binance.events.books import BookSnapshot, levels
from gateway.binance.events.klines import (
    ContinuousKline,
    Kline,
    parse_continuous_kline,
    parse_kline,
)
from gateway.binance.events.trades import AggTrade, Trade, parse_agg_trade, parse_trade
from gateway.binance.kline_recovery import KlineSeries
from gateway.binance.markets import Market
from gateway.binance.streams import TimeUnit
from gateway.errors import MessageParseError, RestAnswerError

E = TypeVar("E")
_ROW_ERRORS = (
    KeyError, TypeError, ValueError, AttributeError, IndexError, InvalidOperation, MessageParseError
)  # fmt: skip

MAX_ROWS = 1000  # aggTrades and historicalTrades answer at most 1000 rows

_AGG_TRADES = {
    Market.SPOT: ("/api/v3/aggTrades", 4),
    Market.USDM: ("/fapi/v1/aggTrades", 20),
    Market.COINM: ("/dapi/v1/aggTrades", 20),
}
# Trades by id. Futures' historicalTrades is MARKET_DATA (an API key header) and weighs 200 since
# SDK 17.0.0 (2026-08-07; 20 before); without a key only the recent trades (GET trades, weight 5)
# can fill a hole. Both serve order-book trades only, never insurance-fund or ADL ones
# (docs/binance-streams.md §Trades over REST).
_HISTORICAL_TRADES = {
    Market.SPOT: ("/api/v3/historicalTrades", 25),
    Market.USDM: ("/fapi/v1/historicalTrades", 200),
    Market.COINM: ("/dapi/v1/historicalTrades", 200),
}
_RECENT_TRADES = {Market.USDM: ("/fapi/v1/trades", 5), Market.COINM: ("/dapi/v1/trades", 5)}
FUTURES_TRADE_ROWS = 500
"""Rows asked of futures trade endpoints: within every documented maximum (500 or 1000)."""
NEEDS_API_KEY = frozenset({Market.USDM, Market.COINM})
"""Markets whose historicalTrades wants the ``X-MBX-APIKEY`` header (MARKET_DATA)."""
# GET depth: path, then (limit, weight) pairs, docs/binance.md §5. 1000 levels is where spot's weight
# jumps (50 -> 250) and futures' maximum: deep enough that levels beyond it rarely matter.
_DEPTH = {
    Market.SPOT: ("/api/v3/depth", {100: 5, 500: 25, 1000: 50, 5000: 250}),
    Market.USDM: ("/fapi/v1/depth", {100: 5, 500: 10, 1000: 20}),
    Market.COINM: ("/dapi/v1/depth", {100: 5, 500: 10, 1000: 20}),
}
# GET exchangeInfo, whole market: spot weighs 20, futures 1 (docs/binance.md §7).
_EXCHANGE_INFO = {
    Market.SPOT: ("/api/v3/exchangeInfo", 20),
    Market.USDM: ("/fapi/v1/exchangeInfo", 1),
    Market.COINM: ("/dapi/v1/exchangeInfo", 1),
}
# GET ticker/24hr of every symbol (no ``symbol``): spot weighs 80, futures 40 (docs/binance.md §7).
_TICKER_24H = {
    Market.SPOT: ("/api/v3/ticker/24hr", 80),
    Market.USDM: ("/fapi/v1/ticker/24hr", 40),
    Market.COINM: ("/dapi/v1/ticker/24hr", 40),
}
DAY_S = 86_400.0
_DEPTH_KEYS = frozenset({"lastUpdateId", "bids", "asks", "E", "T"})
# historicalTrades names its fields; the stream uses letters.
_TRADE_ROW_KEYS = {"id": "t", "price": "p", "qty": "q", "time": "T", "isBuyerMaker": "m",
                   "isBestMatch": "M"}  # fmt: skip
# Futures REST serves order-book trades only: the stream marks those MARKET (``X``).
_FUTURES_TRADE_TYPE = "MARKET"
# quoteQty is price x qty truncated: derivable, and the stream does not carry it either.
_DERIVED_TRADE_ROW_KEYS = frozenset({"quoteQty"})


@dataclass(frozen=True, slots=True)
class RestCall:
    """One GET: path, query and the weight Binance charges for it."""

    path: str
    params: dict[str, str]
    weight: int


def agg_trades_call(market: Market, symbol: str, from_id: int, limit: int = MAX_ROWS) -> RestCall:
    path, weight = _AGG_TRADES[market]
    params = {"symbol": symbol, "fromId": str(from_id), "limit": str(min(limit, MAX_ROWS))}
    return RestCall(path, params, weight)


def historical_trades_call(
    market: Market, symbol: str, from_id: int, limit: int = MAX_ROWS
) -> RestCall:
    path, weight = _HISTORICAL_TRADES[market]
    if market is not Market.SPOT:
        limit = min(limit, FUTURES_TRADE_ROWS)
    params = {"symbol": symbol, "fromId": str(from_id), "limit": str(min(limit, MAX_ROWS))}
    return RestCall(path, params, weight)


def recent_trades_call(market: Market, symbol: str) -> RestCall:
    """Futures' latest trades (no key needed): what fills a recent hole without a key."""
    if market not in _RECENT_TRADES:
        raise ValueError(f"{market.value} backfills trades by id (historicalTrades)")
    path, weight = _RECENT_TRADES[market]
    return RestCall(path, {"symbol": symbol, "limit": str(FUTURES_TRADE_ROWS)}, weight)


def depth_call(market: Market, symbol: str, limit: int = 1000) -> RestCall:
    path, weights = _DEPTH[market]
    if limit not in weights:
        raise ValueError(f"{market.value} depth limit must be one of {sorted(weights)}")
    return RestCall(path, {"symbol": symbol, "limit": str(limit)}, weights[limit])


def exchange_info_call(market: Market) -> RestCall:
    """Every symbol of ``market`` and its state: what the shard plan follows."""
    path, weight = _EXCHANGE_INFO[market]
    return RestCall(path, {}, weight)


def ticker_24h_call(market: Market) -> RestCall:
    """The 24 h statistics of every symbol of the market, in one call."""
    path, weight = _TICKER_24H[market]
    return RestCall(path, {}, weight)


def parse_trade_rates(body: Any) -> dict[str, float]:
    """Each symbol's trades per second over the last 24 h (``count`` / 86400) from a
    ``ticker/24hr`` answer: the activity prior of its trade streams' liveness. Rows without a
    symbol or a count are left out (a prior is a hint, never a reason to fail).

    Raises:
        RestAnswerError: the answer is not a list of objects.
    """
    if not isinstance(body, list):
        raise RestAnswerError(f"ticker/24hr answered {type(body).__name__}, not a list")
    rates = {}
    for row in body:
        if not isinstance(row, dict):
            continue
        symbol, count = row.get("symbol"), row.get("count")
        if isinstance(symbol, str) and isinstance(count, int) and count >= 0:
            rates[symbol] = count / DAY_S
    return rates


def parse_depth_body(
    body: Any, market: Market, symbol: str, received_at_us: int, reason: str
) -> BookSnapshot:
    """``GET depth`` as the BookSnapshot record it becomes (futures' ``E``/``T`` are dropped:
    the snapshot is dated by when the gateway received it); RestAnswerError if it is not one."""
    ctx = _context(market, TimeUnit.MILLISECOND, received_at_us)
    if type(body) is not dict:
        raise RestAnswerError(f"depth answer is a {type(body).__name__}, not an object")
    try:
        return BookSnapshot(
            market=ctx.market,
            symbol=symbol,
            last_update_id=integer(body["lastUpdateId"], "lastUpdateId"),
            reason=reason,
            bids=levels(body["bids"], "bids"),
            asks=levels(body["asks"], "asks"),
            received_at_us=received_at_us,
            extra=extra(body, _DEPTH_KEYS),
        )
    except _ROW_ERRORS as exc:
        raise RestAnswerError(f"depth answer unusable: {type(exc).__name__}: {exc}") from exc


def _context(market: Market, unit: TimeUnit, received_at_us: int) -> Context:
    return Context(market=market.value, to_us=unit.to_us, received_at_us=received_at_us)


def _rows(
    body: Any,
    what: str,
    parse: Callable[[Any], E],
    rejected: list[str] | None,
    *,
    objects: bool = True,
) -> list[E]:
    """Each row of a list answer through ``parse``; bad rows are left out (or raise when the
    caller keeps no ``rejected`` list). ``objects``: rows are JSON objects (klines' are arrays,
    which their ``parse`` checks)."""
    if type(body) is not list:
        raise RestAnswerError(f"{what} answer is a {type(body).__name__}, not a list of rows")
    events = []
    for index, row in enumerate(body):
        try:
            if objects and type(row) is not dict:
                raise TypeError(f"row is a {type(row).__name__}, not an object")
            events.append(parse(row))
        except _ROW_ERRORS as exc:
            reason = f"{what} row {index}: {type(exc).__name__}: {exc}"[:500]
            if rejected is None:
                raise RestAnswerError(reason) from exc
            rejected.append(reason)
    return events


def parse_agg_trade_rows(
    rows: Any, market: Market, symbol: str, received_at_us: int,
    unit: TimeUnit = TimeUnit.MILLISECOND, *, rejected: list[str] | None = None,
) -> list[AggTrade]:  # fmt: skip
    """``GET aggTrades`` rows as the AggTrade events the stream would have carried."""
    ctx = _context(market, unit, received_at_us)
    return _rows(
        rows,
        "aggTrades",
        lambda row: parse_agg_trade({**row, "e": "aggTrade", "E": row["T"], "s": symbol}, ctx),
        rejected,
    )


def parse_trade_rows(
    rows: Any, market: Market, symbol: str, received_at_us: int,
    unit: TimeUnit = TimeUnit.MILLISECOND, *, rejected: list[str] | None = None,
) -> list[Trade]:  # fmt: skip
    """``GET historicalTrades`` (or futures ``GET trades``) rows as the Trade events the stream
    would have carried; futures rows are order-book trades, ``X`` = ``MARKET``."""
    ctx = _context(market, unit, received_at_us)

    def parse(row: dict[str, Any]) -> Trade:
        payload = {_TRADE_ROW_KEYS.get(k, k): v for k, v in row.items()}
        for key in _DERIVED_TRADE_ROW_KEYS:
            payload.pop(key, None)
        if market is not Market.SPOT:
            payload.setdefault("X", _FUTURES_TRADE_TYPE)
        return parse_trade({**payload, "e": "trade", "E": row["time"], "s": symbol}, ctx)

    return _rows(rows, "historicalTrades", parse, rejected)


# GET klines / continuousKlines rows: [open time, open, high, low, close, volume, close time,
# quote volume, trades, taker buy volume, taker buy quote volume, ignore] (docs/binance.md §7).
_KLINE_ROW_FIELDS = 11


def parse_kline_rows(
    rows: Any, market: Market, series: KlineSeries, received_at_us: int,
    *, rejected: list[str] | None = None,
) -> list[Kline | ContinuousKline]:  # fmt: skip
    """``GET klines`` (or ``continuousKlines``) rows as the closed kline events the stream would
    have carried: through the stream's own parser, ``x`` true (the caller keeps only candles
    that closed before the window's end), the close time standing in for the event time. REST
    rows carry no first / last trade (update) ids: they are -1."""
    ctx = _context(market, TimeUnit.MILLISECOND, received_at_us)

    def parse(row: Any) -> Kline | ContinuousKline:
        if type(row) is not list or len(row) < _KLINE_ROW_FIELDS:
            raise TypeError(f"row is not a list of {_KLINE_ROW_FIELDS}+ values: {row!r}"[:200])
        o, h, l, c, v, close, q, n, vb, qb = row[1:_KLINE_ROW_FIELDS]  # noqa: E741
        bar = {"t": row[0], "T": close, "i": series.interval, "f": -1, "L": -1, "o": o, "c": c,
               "h": h, "l": l, "v": v, "n": n, "x": True, "q": q, "V": vb, "Q": qb, "B": "0"}  # fmt: skip
        if series.kind == Kline.KIND:
            payload = {
                "e": "kline",
                "E": close,
                "s": series.subject,
                "k": {"s": series.subject, **bar},
            }
            return parse_kline(payload, ctx)
        payload = {"e": "continuous_kline", "E": close, "ps": series.subject,
                   "ct": series.contract_type, "k": bar}  # fmt: skip
        return parse_continuous_kline(payload, ctx)

    return _rows(rows, "klines", parse, rejected, objects=False)
