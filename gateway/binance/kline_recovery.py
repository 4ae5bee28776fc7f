"""Klines lost in a hole, recovered from REST ``klines`` / ``continuousKlines``, as pure code.

A kline stream pushes its candle so far every 250 ms or 2 s and, once per interval, the candle's
final state (``x`` true). A hole in the stream (a reconnect, a cut for not reading) loses the final
states of every candle that closed inside it; the candles are what Binance keeps, so REST serves
them again (docs/binance.md §7). Which candles a window lost: those whose close time lies strictly
between the window's bounds (the stream's last event before the hole and its first after it). A
candle that closed before the last event was final before the hole (its ``x`` event came first,
stream order); one still open at the first event after it closes later, live. Those whose final
state was published anyway (a closed kline seen before the window was known) are left out, so each
open time is published closed once.

:class:`KlineWindowFetch` walks one window's REST pages; the caller sends the requests, parses
the rows (``gateway.binance.rest_payloads.parse_kline_rows``) and publishes what it returns.
:class:`ClosedKlines` remembers which closed candles each stream published, for that dedupe.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.binance.markets import Market

__all__ = [
    "ClosedKlines",
    "KlineSeries",
    "KlineWindowFetch",
    "RecoveredKline",
    "klines_weight",
    "series_of",
]

MAX_ROWS = {Market.SPOT: 1_000, Market.USDM: 1_500, Market.COINM: 1_500}
"""Most rows one ``klines`` answer holds (docs/binance.md §7)."""
PAGE_ROWS = 1_000
"""Rows asked per page: spot's maximum, and futures' last tier before the weight doubles."""

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_MONTH_MS = 31 * 86_400_000  # the longest month: enough to reach back to a 1M candle's open
_STREAM = re.compile(
    r"^(?P<subject>[a-z0-9_]+)@(?P<channel>kline|continuousKline)_(?P<interval>\d+[smhdwM])"
    r"(?P<tz>@[+-]\d\d:\d\d)?$"
)
_CONTRACT = re.compile(r"^(?P<pair>[a-z0-9]+)_(?P<contract>[a-z_]+)$")


@dataclass(frozen=True, slots=True)
class KlineSeries:
    """What one kline stream follows: a symbol's candles, or a pair's for one contract type."""

    kind: str
    """``kline`` or ``continuous_kline`` (the record kind)."""
    subject: str
    """Symbol (``kline``) or pair (``continuous_kline``), upper case."""
    interval: str
    contract_type: str | None = None
    """``PERPETUAL``, ``CURRENT_QUARTER``, ... (continuous klines only)."""

    @property
    def span_ms(self) -> int:
        """The interval's length (a month counts 31 days)."""
        if self.interval.endswith("M"):
            return int(self.interval[:-1]) * _MONTH_MS
        return int(self.interval[:-1]) * _UNIT_MS[self.interval[-1]]


def series_of(stream: str) -> KlineSeries | None:
    """The series of a kline stream; None for every other stream, and for klines in a time zone
    (``@+08:00``: its windows are not UTC's, and futures REST has no ``timeZone``; they stay
    declared)."""
    match = _STREAM.match(stream)
    if match is None or match["tz"]:
        return None
    subject, interval = match["subject"], match["interval"]
    if match["channel"] == "kline":
        return KlineSeries("kline", subject.upper(), interval)
    contract = _CONTRACT.match(subject)
    if contract is None:
        return None
    return KlineSeries(
        "continuous_kline", contract["pair"].upper(), interval, contract["contract"].upper()
    )


_PATHS = {
    ("kline", Market.SPOT): "/api/v3/klines",
    ("kline", Market.USDM): "/fapi/v1/klines",
    ("kline", Market.COINM): "/dapi/v1/klines",
    ("continuous_kline", Market.USDM): "/fapi/v1/continuousKlines",
    ("continuous_kline", Market.COINM): "/dapi/v1/continuousKlines",
}


def klines_weight(market: Market, limit: int) -> int:
    """Spot 2 whatever the limit; futures 1/2/5/10 for limit [1,100)/[100,500)/[500,1000]/above
    (docs/binance.md §7)."""
    if market is Market.SPOT:
        return 2
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    return 5 if limit <= 1_000 else 10


@dataclass(frozen=True, slots=True)
class KlinesRequest:
    """One GET of a window's candles (``startTime`` / ``endTime`` in ms, both inclusive)."""

    path: str
    params: dict[str, str]
    weight: int


class RecoveredKline(Protocol):
    """What the fetch needs of a parsed REST row (a ``Kline`` or ``ContinuousKline``)."""

    @property
    def open_time_us(self) -> int: ...

    @property
    def close_time_us(self) -> int: ...


class KlineWindowFetch:
    """The REST pages of one window and the closed candles it lost, in open-time order."""

    def __init__(
        self,
        market: Market,
        series: KlineSeries,
        start_us: int,
        end_us: int,
        published: Iterable[int] = (),
    ) -> None:
        """``start_us`` / ``end_us``: the stream's last event before the hole and its first
        after it; ``published``: open times (µs) of this stream's closed candles already
        published (left out)."""
        if (series.kind, market) not in _PATHS:
            raise ValueError(f"{market.value} has no REST {series.kind}")
        self.market, self.series = market, series
        self.start_us, self.end_us = start_us, end_us
        self._published = set(published)
        self._seen: set[int] = set()
        # Binance's startTime selects by open time: reach back one interval for the candle that
        # was open at the window's start.
        self._next_ms: int | None = start_us // 1_000 - series.span_ms
        self._end_ms = end_us // 1_000
        if self._next_ms > self._end_ms or end_us <= start_us:
            self._next_ms = None

    @property
    def done(self) -> bool:
        return self._next_ms is None

    def request(self) -> KlinesRequest | None:
        """The next page to fetch; None once the window is covered."""
        if self._next_ms is None:
            return None
        series = self.series
        if series.kind == "kline":
            params = {"symbol": series.subject}
        else:
            assert series.contract_type is not None
            params = {"pair": series.subject, "contractType": series.contract_type}
        params |= {
            "interval": series.interval,
            "startTime": str(self._next_ms),
            "endTime": str(self._end_ms),
            "limit": str(PAGE_ROWS),
        }
        path = _PATHS[series.kind, self.market]
        return KlinesRequest(path, params, klines_weight(self.market, PAGE_ROWS))

    def receive_page(self, rows: Sequence[RecoveredKline], answered: int) -> list[int]:
        """The parsed rows of the last page (``answered``: how many rows the answer had,
        parsed or not, which says whether another page follows). Returns the indexes of the
        rows to publish: closed inside the window, each open time once, none already published.
        """
        wanted = []
        last_open_ms: int | None = None
        for index, row in enumerate(rows):
            last_open_ms = max(last_open_ms or 0, row.open_time_us // 1_000)
            inside = self.start_us < row.close_time_us < self.end_us
            fresh = row.open_time_us not in self._published and row.open_time_us not in self._seen
            if inside and fresh:
                self._seen.add(row.open_time_us)
                wanted.append(index)
        if answered < PAGE_ROWS or last_open_ms is None or last_open_ms + 1 > self._end_ms:
            self._next_ms = None  # a short page is the last one
        else:
            self._next_ms = last_open_ms + 1
        return wanted


class ClosedKlines:
    """The open times of the closed candles each stream published lately (bounded per stream:
    a window never reaches back further than its hole)."""

    def __init__(self, per_stream: int = 4_096) -> None:
        self._per_stream = per_stream
        self._recent: dict[tuple[Market, str], tuple[deque[int], set[int]]] = {}

    def add(self, market: Market, stream: str, open_time_us: int) -> None:
        order, known = self._recent.setdefault((market, stream), (deque(), set()))
        if open_time_us in known:
            return
        order.append(open_time_us)
        known.add(open_time_us)
        if len(order) > self._per_stream:
            known.discard(order.popleft())

    def of(self, market: Market, stream: str) -> frozenset[int]:
        entry = self._recent.get((market, stream))
        return frozenset() if entry is None else frozenset(entry[1])

    def forget(self, market: Market, streams: Iterable[str]) -> None:
        for stream in streams:
            self._recent.pop((market, stream), None)
