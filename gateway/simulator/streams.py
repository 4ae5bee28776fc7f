"""Stream names, connection URLs and the catalogue of streams the simulator serves.

Pure functions and small values, no I/O. A stream name is ``<lowercase symbol>@<channel>``
(FACTS §3); a connection asks for streams in its URL, either raw (``/ws/<s1>/<s2>``) or combined
(``/stream?streams=<s1>/<s2>``), with an optional ``timeUnit`` (FACTS §1.1).

Adding a stream kind later means adding a :class:`Channel` member and the code that publishes
its events; the catalogue and URL parsing need no change.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from gateway.simulator.payloads import TimeUnit

MAX_STREAMS_PER_CONNECTION = 1024
"""Spot's documented per-connection stream cap (FACTS §2)."""

RAW_PATH = "/ws"
COMBINED_PATH = "/stream"


class Channel(enum.Enum):
    """The part of a stream name after ``@``."""

    TRADE = "trade"
    AGG_TRADE = "aggTrade"


@dataclass(frozen=True, slots=True)
class StreamKey:
    """A parsed stream name; ``symbol`` is uppercase, as in payloads."""

    symbol: str
    channel: Channel


class StreamRequestError(ValueError):
    """A connection URL or subscription the simulator refuses; ``reason`` is the close reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UnknownPathError(StreamRequestError):
    """A URL path that is neither ``/ws...`` nor ``/stream``: answered with HTTP 404."""


@dataclass(frozen=True, slots=True)
class ConnectionRequest:
    """What a client asked for in its URL."""

    streams: tuple[str, ...]
    combined: bool
    time_unit: TimeUnit


def stream_name(symbol: str, channel: Channel) -> str:
    """``stream_name("BTCUSDT", Channel.TRADE) == "btcusdt@trade"``."""
    return f"{symbol.lower()}@{channel.value}"


def parse_stream_name(name: str) -> StreamKey | None:
    """Parse ``<symbol>@<channel>``; ``None`` when it is not a v0 stream name.

    Symbols must be lowercase: Binance documents lowercase names, and an uppercase one is the
    classic client mistake the simulator should expose rather than forgive.
    """
    symbol, at, suffix = name.partition("@")
    if not at or not symbol or symbol != symbol.lower():
        return None
    try:
        channel = Channel(suffix)
    except ValueError:
        return None
    return StreamKey(symbol.upper(), channel)


def parse_connection_target(target: str) -> ConnectionRequest:
    """Parse a request target such as ``/stream?streams=a/b&timeUnit=MICROSECOND``.

    Names are URL-decoded (FACTS §1.1) and de-duplicated in order; they are not validated here
    (see :class:`StreamCatalog`).

    Raises:
        UnknownPathError: the path is not a stream endpoint.
        StreamRequestError: the ``timeUnit`` is not one Binance accepts.
    """
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    time_unit = _parse_time_unit(query.get("timeUnit", []))
    path = parts.path.rstrip("/") or "/"
    if path == COMBINED_PATH:
        names = "/".join(query.get("streams", []))
        return ConnectionRequest(_split_names(names), combined=True, time_unit=time_unit)
    if path == RAW_PATH or path.startswith(RAW_PATH + "/"):
        names = path[len(RAW_PATH) + 1 :]
        return ConnectionRequest(_split_names(names), combined=False, time_unit=time_unit)
    raise UnknownPathError(f"Unknown path {parts.path}")


def _split_names(joined: str) -> tuple[str, ...]:
    names = (unquote(name) for name in joined.split("/"))
    return tuple(dict.fromkeys(name for name in names if name))


def _parse_time_unit(values: list[str]) -> TimeUnit:
    if not values:
        return TimeUnit.MILLISECOND
    try:
        return TimeUnit.parse(values[-1])
    except ValueError:
        raise StreamRequestError(f"Invalid timeUnit {values[-1]}") from None


class StreamCatalog:
    """The streams that exist on this simulator: every channel of every configured symbol."""

    def __init__(self, symbols: Iterable[str]) -> None:
        self._symbols = frozenset(symbol.upper() for symbol in symbols)

    def is_known(self, name: str) -> bool:
        """Whether ``name`` is a stream this simulator publishes."""
        key = parse_stream_name(name)
        return key is not None and key.symbol in self._symbols

    def check(self, names: Iterable[str], *, already: int = 0, allow_unknown: bool = False) -> None:
        """Validate the new streams a connection asks for, ``already`` being how many it holds.

        Raises:
            StreamRequestError: more than 1024 streams in total, or (unless ``allow_unknown``)
                a name that is not a stream of this simulator.
        """
        names = list(names)
        if already + len(names) > MAX_STREAMS_PER_CONNECTION:
            raise StreamRequestError(
                f"Too many streams: {already + len(names)} > {MAX_STREAMS_PER_CONNECTION}"
            )
        if allow_unknown:
            return
        for name in names:
            if not self.is_known(name):
                raise StreamRequestError(f"Invalid stream name {name[:80]}")
