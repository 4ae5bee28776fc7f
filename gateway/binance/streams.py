"""Stream names and combined-stream URLs, as pure functions (which streams exist, and their
routes: :mod:`gateway.binance.channels`).

Binance: "All symbols for streams are lowercase"; a combined connection is
``/stream?streams=<s1>/<s2>/...`` and wraps each payload as ``{"stream": ..., "data": ...}``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

from gateway.binance.markets import SPOT_LIMITS


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
