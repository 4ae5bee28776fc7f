"""Klines and rolling-window statistics derived from the trades, pure.

Each symbol keeps one-second and one-minute candles built from its aggregate trades (one update
per taker order, not per trade, to stay cheap on the hot path). Any kline interval, with or
without a timezone offset, and any rolling-window ticker (24 h, 1 h, 4 h, 1 d) is a merge of
those candles, so what the kline and ticker streams say is, by construction, what the trade
streams carried. Rolling windows start on a minute, as Binance's do (docs/binance.md §3: "``O`` starts on a
minute; window may be up to 59999 ms wider").
"""

from __future__ import annotations

import calendar
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from gateway.simulator.engine import UNITS_PER_WHOLE, AggTrade

SECOND_MS, MINUTE_MS, HOUR_MS, DAY_MS = 1_000, 60_000, 3_600_000, 86_400_000
_UNIT_MS = {"s": SECOND_MS, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}
_INTERVAL = re.compile(r"(\d+)([smhdwM])")
_MONDAY_OFFSET_MS = 4 * DAY_MS  # 1970-01-01 was a Thursday; Binance weeks start on Monday

SPOT_INTERVALS = (
    "1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M".split()  # noqa: SIM905 - the docs' list
)
FUTURES_INTERVALS = SPOT_INTERVALS[1:]
ROLLING_WINDOWS = {"1h": HOUR_MS, "4h": 4 * HOUR_MS, "1d": DAY_MS}
SECONDS_KEPT = 3_600
MINUTES_KEPT = 7 * 1_440


@dataclass(frozen=True, slots=True)
class Candle:
    """OHLCV of the trades in ``[open_time_ms, close_time_ms]``; prices/volumes in 1e-8 units."""

    open_time_ms: int
    close_time_ms: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    quote_volume: int
    trades: int
    taker_buy_volume: int
    taker_buy_quote_volume: int
    first_trade_id: int
    last_trade_id: int
    last_quantity: int

    @classmethod
    def empty(cls, open_ms: int, close_ms: int, price: int) -> Candle:
        """A window without trades: flat at ``price``, ids -1."""
        return cls(open_ms, close_ms, price, price, price, price, 0, 0, 0, 0, 0, -1, -1, 0)

    def merged(self, later: Candle) -> Candle:
        """This candle followed by ``later`` (times are taken by the caller)."""
        if not self.trades:
            return replace(later, open_time_ms=self.open_time_ms, close_time_ms=self.close_time_ms)
        if not later.trades:
            return self
        return Candle(
            self.open_time_ms,
            self.close_time_ms,
            self.open,
            max(self.high, later.high),
            min(self.low, later.low),
            later.close,
            self.volume + later.volume,
            self.quote_volume + later.quote_volume,
            self.trades + later.trades,
            self.taker_buy_volume + later.taker_buy_volume,
            self.taker_buy_quote_volume + later.taker_buy_quote_volume,
            self.first_trade_id,
            later.last_trade_id,
            later.last_quantity,
        )


def interval_ms(interval: str) -> int:
    """The nominal length of an interval (``1M`` counts 31 days; windows use the calendar)."""
    match = _INTERVAL.fullmatch(interval)
    if match is None:
        raise ValueError(f"unknown interval {interval!r}")
    count, unit = int(match[1]), match[2]
    return count * (31 * DAY_MS if unit == "M" else _UNIT_MS[unit])


def window(interval: str, time_ms: int, offset_ms: int = 0) -> tuple[int, int]:
    """``(open, close)`` ms of the ``interval`` window holding ``time_ms``, in UTC+offset."""
    if interval == "1M":
        local = datetime.fromtimestamp((time_ms + offset_ms) / 1_000, tz=UTC)
        start = calendar.timegm((local.year, local.month, 1, 0, 0, 0)) * 1_000
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        end = calendar.timegm((year, month, 1, 0, 0, 0)) * 1_000
        return start - offset_ms, end - offset_ms - 1
    size = interval_ms(interval)
    shift = offset_ms - (_MONDAY_OFFSET_MS if interval.endswith("w") else 0)
    start = (time_ms + shift) // size * size - shift
    return start, start + size - 1


def parse_offset(text: str) -> int:
    """``"+08:00"`` -> milliseconds east of UTC; ``""`` -> 0."""
    if not text:
        return 0
    sign = -1 if text[0] == "-" else 1
    hours, minutes = text[1:].split(":")
    return sign * (int(hours) * HOUR_MS + int(minutes) * MINUTE_MS)


Row = list[int]
"""A live candle: the fields of :class:`Candle`, in order, mutated in place on the hot path."""


class SymbolCandles:
    """A symbol's one-second and one-minute candles, bounded.

    Rows are plain lists updated in place (one update per taker order must stay cheap); readers
    get frozen :class:`Candle` copies.
    """

    def __init__(self, initial_price: int) -> None:
        self._seconds: deque[Row] = deque(maxlen=SECONDS_KEPT)
        self._minutes: deque[Row] = deque(maxlen=MINUTES_KEPT)
        self.last_price = initial_price
        self.last_trade_time_ms = 0

    @property
    def seconds(self) -> list[Candle]:
        """The retained one-second candles, oldest first."""
        return [Candle(*row) for row in self._seconds]

    @property
    def minutes(self) -> list[Candle]:
        """The retained one-minute candles, oldest first."""
        return [Candle(*row) for row in self._minutes]

    def record(self, agg: AggTrade) -> None:
        """Add one taker order's trades (an aggregate trade) to the current candles."""
        time_ms = agg.trade_time_us // 1_000
        price, quantity = agg.price, agg.quantity
        quote = price * quantity // UNITS_PER_WHOLE
        buys = not agg.buyer_is_maker
        count = agg.last_trade_id - agg.first_trade_id + 1
        for rows, size in ((self._seconds, SECOND_MS), (self._minutes, MINUTE_MS)):
            opened = time_ms // size * size
            row = rows[-1] if rows else None
            if row is None or row[0] < opened:
                rows.append(
                    [opened, opened + size - 1, price, price, price, price, quantity, quote,
                     count, quantity if buys else 0, quote if buys else 0,
                     agg.first_trade_id, agg.last_trade_id, quantity]
                )  # fmt: skip
                continue
            # The same window (or a clock that went back: the trade joins the current one).
            row[3] = max(row[3], price)
            row[4] = min(row[4], price)
            row[5] = price
            row[6] += quantity
            row[7] += quote
            row[8] += count
            if buys:
                row[9] += quantity
                row[10] += quote
            row[12] = agg.last_trade_id
            row[13] = quantity
        self.last_price = price
        self.last_trade_time_ms = max(self.last_trade_time_ms, time_ms)

    def kline(self, interval: str, now_ms: int, offset_ms: int = 0) -> Candle:
        """The current ``interval`` kline at ``now_ms``."""
        start, end = window(interval, now_ms, offset_ms)
        return self.aggregate(start, end)

    def aggregate(self, start_ms: int, end_ms: int) -> Candle:
        """All trades with a time in ``[start_ms, end_ms]`` merged into one candle."""
        base = self._seconds if end_ms - start_ms < MINUTE_MS - 1 else self._minutes
        inside = [Candle(*r) for r in _newest_first(base, start_ms) if r[0] <= end_ms]
        opening = self.price_before(start_ms) if not inside else inside[-1].open
        result = Candle.empty(start_ms, end_ms, opening)
        for candle in reversed(inside):
            result = result.merged(candle)
        return result

    def price_before(self, time_ms: int) -> int:
        """The last trade price before ``time_ms`` (the ticker's ``x``)."""
        for row in reversed(self._minutes):
            if row[0] < time_ms // MINUTE_MS * MINUTE_MS:
                return row[5]
        return self._minutes[0][2] if self._minutes else self.last_price

    def rolling(self, window_ms: int, now_ms: int) -> Candle:
        """Statistics of the rolling window ending now, opened on a minute boundary."""
        start = (now_ms - window_ms) // MINUTE_MS * MINUTE_MS
        candle = self.aggregate(start, now_ms)
        return replace(candle, open_time_ms=start, close_time_ms=now_ms)

    def history(
        self, interval: str, start_ms: int, end_ms: int, offset_ms: int = 0
    ) -> list[Candle]:
        """The ``interval`` klines (only those with trades) between two times, oldest first."""
        base = self._seconds if interval == "1s" else self._minutes
        grouped: dict[int, Candle] = {}
        for row in base:
            if not start_ms <= row[0] <= end_ms:
                continue
            candle = Candle(*row)
            opened, closed = window(interval, candle.open_time_ms, offset_ms)
            current = grouped.get(opened) or Candle.empty(opened, closed, candle.open)
            grouped[opened] = current.merged(candle)
        return [grouped[key] for key in sorted(grouped)]


def _newest_first(rows: deque[Row], start_ms: int) -> Iterable[Row]:
    for row in reversed(rows):
        if row[0] < start_ms:
            return
        yield row


def price_change_percent(change: int, open_price: int) -> str:
    """``P`` of a ticker: the change in percent with 3 decimals (``"-0.452"``)."""
    if not open_price:
        return "0.000"
    thousandths = (
        change * 100_000 // open_price if change >= 0 else -(-change * 100_000 // open_price)
    )
    sign = "-" if thousandths < 0 else ""
    whole, fraction = divmod(abs(thousandths), 1_000)
    return f"{sign}{whole}.{fraction:03d}"
