"""Stream names and combined-stream URLs, as pure functions.

Binance: "All symbols for streams are lowercase"; a combined connection is
``/stream?streams=<s1>/<s2>/...`` and wraps each payload as ``{"stream": ..., "data": ...}``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence

from gateway.binance.markets import SPOT_LIMITS

KLINE_INTERVALS = [
    "1s",
    "1m",
    "3m",
    "5m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "8h",
    "12h",
    "1d",
    "3d",
    "1w",
    "1M",
]
_INTERVAL = "|".join(KLINE_INTERVALS)
# Per-symbol channels (the part of a stream name after "<symbol>@"), docs/binance.md §3 and §4.
_SYMBOL_CHANNEL = re.compile(
    rf"""(?x)^(?:
        trade | aggTrade | blockTrade | referencePrice | avgPrice | bookTicker
      | miniTicker | ticker | ticker_(?:1h|4h|1d) | forceOrder | compositeIndex
      | (?:kline|continuousKline|markPriceKline|indexPriceKline)_(?:{_INTERVAL})(?:@\+08:00)?
      | depth(?:5|10|20)?(?:@100ms|@250ms|@500ms)? | rpiDepth@500ms
      | (?:markPrice|indexPrice)(?:@1s)?
    )$"""
)
# Streams that cover the whole market rather than one symbol.
_MARKET_WIDE_STREAM = re.compile(
    r"""(?x)^(?:
        !miniTicker@arr | !ticker@arr | !ticker_(?:1h|4h|1d)@arr | !bookTicker
      | !markPrice@arr(?:@1s)? | !forceOrder@arr | !contractInfo | !assetIndex@arr
      | tradingSession
    )$"""
)
# USD-M splits its streams by route (docs/binance.md §1.2): book streams on /public, the rest on
# /market; a connection without a route receives only public data.
_USDM_PUBLIC_CHANNEL = re.compile(r"^(?:!?bookTicker|depth\d*(?:@\d+ms)?|rpiDepth@\d+ms)$")


def validate_channel(channel: str) -> str:
    """A per-symbol channel Binance serves; ValueError names a typo at start-up."""
    if not _SYMBOL_CHANNEL.match(channel):
        raise ValueError(f"unknown stream channel {channel!r} (e.g. trade, aggTrade, kline_1m)")
    return channel


def validate_market_wide(stream: str) -> str:
    if not _MARKET_WIDE_STREAM.match(stream):
        raise ValueError(f"unknown market-wide stream {stream!r} (e.g. !miniTicker@arr)")
    return stream


def usdm_route(stream: str) -> str:
    """``/public`` or ``/market``: the USD-M path a stream must be subscribed on."""
    channel = stream.split("@", 1)[1] if "@" in stream and not stream.startswith("!") else stream
    return "/public" if _USDM_PUBLIC_CHANNEL.match(channel) else "/market"


class TimeUnit(enum.Enum):
    """The ``timeUnit`` URL parameter: the unit of every timestamp on the connection."""

    MILLISECOND = "MILLISECOND"
    MICROSECOND = "MICROSECOND"

    @property
    def to_us(self) -> int:
        """The factor that turns one of these units into microseconds."""
        return 1000 if self is TimeUnit.MILLISECOND else 1


def stream_name(symbol: str, channel: str) -> str:
    """``stream_name("BTCUSDT", "trade") == "btcusdt@trade"``."""
    if not symbol or "@" in symbol or "/" in symbol:
        raise ValueError(f"not a symbol: {symbol!r}")
    return f"{symbol.lower()}@{channel}"


def combined_path(names: Sequence[str], time_unit: TimeUnit = TimeUnit.MILLISECOND) -> str:
    """The path and query of one combined-stream connection carrying ``names``."""
    if not names:
        raise ValueError("a combined stream needs at least one stream name")
    # "+" (in "kline_1m@+08:00") would read as a space in a query string: percent-encode it.
    path = "/stream?streams=" + "/".join(names).replace("+", "%2B")
    if time_unit is TimeUnit.MICROSECOND:
        path += "&timeUnit=MICROSECOND"
    return path


# Binance documents no URL length limit, but its servers refuse request targets of about 8 kB
# (a third-party measurement found 8004 characters); 1024 stream names do not fit in that, so
# connections are split by length as well as by count. The margin covers path and query.
MAX_STREAM_LIST_CHARS = 7_800


def chunk(
    names: Iterable[str],
    limit: int = SPOT_LIMITS.max_streams_per_connection,
    max_chars: int = MAX_STREAM_LIST_CHARS,
) -> list[list[str]]:
    """Split stream names into connections of at most ``limit`` streams whose ``/``-joined list
    stays within ``max_chars``, order kept."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    groups: list[list[str]] = []
    current: list[str] = []
    length = 0
    for name in names:
        added = len(name) + (1 if current else 0)
        if len(name) > max_chars:
            raise ValueError(f"stream name longer than {max_chars} characters: {name[:40]}...")
        if current and (len(current) == limit or length + added > max_chars):
            groups.append(current)
            current, length, added = [], 0, len(name)
        current.append(name)
        length += added
    if current:
        groups.append(current)
    return groups
