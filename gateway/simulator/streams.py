"""Stream names, connection URLs and the catalogue of streams each market serves (pure).

A stream name is ``<lowercase symbol>@<channel>`` or an all-market name such as
``!miniTicker@arr`` (docs/binance.md §3, §4). :func:`parse_stream_name` turns any documented name into a
:class:`StreamKey`; :class:`StreamCatalog` then says whether this simulator's market has that
stream (spot has no ``!bookTicker`` since 2022 nor ``!ticker@arr`` since 2026-03-26; futures
serve ``@trade`` undocumented, USDⓈ-M on ``/public``: docs/binance-streams.md) and for which
symbol, pair or asset.

A connection asks for streams in its URL, raw (``/ws/<s1>/<s2>``) or combined
(``/stream?streams=<s1>/<s2>``), with an optional ``timeUnit`` (docs/binance.md §1.1). USDⓈ-M prefixes the
path with its route (``/public``, ``/market``, ``/private``, docs/binance.md §1.2).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from gateway.simulator.candles import FUTURES_INTERVALS, SPOT_INTERVALS
from gateway.simulator.markets import MAX_STREAMS_PER_CONNECTION, Market, Route
from gateway.simulator.payloads import TimeUnit

RAW_PATH = "/ws"
COMBINED_PATH = "/stream"
WS_API_PATH = "/ws-api/v3"


class Channel(enum.Enum):
    """The v0 channels (trade and aggTrade), kept for callers that list them."""

    TRADE = "trade"
    AGG_TRADE = "aggTrade"


class Kind(enum.Enum):
    """Every documented stream type."""

    TRADE = "trade"
    AGG_TRADE = "aggTrade"
    BLOCK_TRADE = "blockTrade"
    REFERENCE_PRICE = "referencePrice"
    KLINE = "kline"
    MINI_TICKER = "miniTicker"
    TICKER = "ticker"
    ROLLING_TICKER = "rollingTicker"
    BOOK_TICKER = "bookTicker"
    AVG_PRICE = "avgPrice"
    PARTIAL_DEPTH = "partialDepth"
    DIFF_DEPTH = "depth"
    RPI_DEPTH = "rpiDepth"
    MARK_PRICE = "markPrice"
    FORCE_ORDER = "forceOrder"
    COMPOSITE_INDEX = "compositeIndex"
    CONTINUOUS_KLINE = "continuousKline"
    MARK_PRICE_KLINE = "markPriceKline"
    INDEX_PRICE_KLINE = "indexPriceKline"
    INDEX_PRICE = "indexPrice"
    ASSET_INDEX = "assetIndex"
    ALL_MINI_TICKER = "!miniTicker@arr"
    ALL_TICKER = "!ticker@arr"
    ALL_ROLLING_TICKER = "!ticker_<window>@arr"
    ALL_BOOK_TICKER = "!bookTicker"
    ALL_FORCE_ORDER = "!forceOrder@arr"
    ALL_MARK_PRICE = "!markPrice@arr"
    CONTRACT_INFO = "!contractInfo"
    ALL_ASSET_INDEX = "!assetIndex@arr"
    TRADING_SESSION = "tradingSession"


_K = Kind
_COMMON = {_K.AGG_TRADE, _K.KLINE, _K.MINI_TICKER, _K.ALL_MINI_TICKER, _K.TICKER, _K.BOOK_TICKER}
_COMMON |= {_K.PARTIAL_DEPTH, _K.DIFF_DEPTH}
_FUTURES = _COMMON | {_K.ALL_TICKER, _K.ALL_BOOK_TICKER, _K.MARK_PRICE, _K.FORCE_ORDER, _K.TRADE}
_FUTURES |= {_K.ALL_FORCE_ORDER, _K.CONTINUOUS_KLINE, _K.CONTRACT_INFO}
KINDS_BY_MARKET: dict[Market, frozenset[Kind]] = {
    Market.SPOT: frozenset(
        _COMMON
        | {_K.TRADE, _K.BLOCK_TRADE, _K.REFERENCE_PRICE, _K.ROLLING_TICKER}
        | {_K.ALL_ROLLING_TICKER, _K.AVG_PRICE}
    ),
    Market.USDM: frozenset(
        _FUTURES
        | {_K.ALL_MARK_PRICE, _K.RPI_DEPTH, _K.COMPOSITE_INDEX, _K.ASSET_INDEX}
        | {_K.ALL_ASSET_INDEX, _K.TRADING_SESSION}
    ),
    Market.COINM: frozenset(_FUTURES | {_K.INDEX_PRICE, _K.INDEX_PRICE_KLINE, _K.MARK_PRICE_KLINE}),
}
PUBLIC_ROUTE_KINDS = frozenset(
    {_K.BOOK_TICKER, _K.ALL_BOOK_TICKER, _K.PARTIAL_DEPTH, _K.DIFF_DEPTH, _K.RPI_DEPTH, _K.TRADE}
)
"""USDⓈ-M's high-frequency streams, served on ``/public`` (trade as peers measured it live,
docs/binance-streams.md); the rest is on ``/market``."""
_SPEEDS: dict[Market, tuple[str, ...]] = {
    Market.SPOT: ("", "@100ms"),
    Market.USDM: ("", "@500ms", "@100ms"),
    Market.COINM: ("", "@500ms", "@100ms"),
}
CONTRACT_TYPES = ("perpetual", "current_quarter", "next_quarter", "tradifi_perpetual")
TIMEZONE_OFFSETS = ("+08:00",)
ROLLING_WINDOW_NAMES = ("1h", "4h", "1d")

_SIMPLE = {kind.value: kind for kind in (_K.TRADE, _K.AGG_TRADE, _K.BLOCK_TRADE)}
_SIMPLE |= {kind.value: kind for kind in (_K.REFERENCE_PRICE, _K.MINI_TICKER, _K.TICKER)}
_SIMPLE |= {kind.value: kind for kind in (_K.BOOK_TICKER, _K.AVG_PRICE, _K.FORCE_ORDER)}
_SIMPLE |= {kind.value: kind for kind in (_K.COMPOSITE_INDEX, _K.ASSET_INDEX)}
_GLOBAL = {
    "!miniTicker@arr": (_K.ALL_MINI_TICKER, ""),
    "!ticker@arr": (_K.ALL_TICKER, ""),
    "!bookTicker": (_K.ALL_BOOK_TICKER, ""),
    "!forceOrder@arr": (_K.ALL_FORCE_ORDER, ""),
    "!markPrice@arr": (_K.ALL_MARK_PRICE, ""),
    "!markPrice@arr@1s": (_K.ALL_MARK_PRICE, "@1s"),
    "!contractInfo": (_K.CONTRACT_INFO, ""),
    "!assetIndex@arr": (_K.ALL_ASSET_INDEX, ""),
    "tradingSession": (_K.TRADING_SESSION, ""),
}
_ROLLING_ALL = re.compile(r"!ticker_(1h|4h|1d)@arr")
_SUBJECT = re.compile(r"[a-z0-9_]+")
_SUFFIXES: tuple[tuple[re.Pattern[str], Kind], ...] = (
    (re.compile(r"ticker_(?P<param>1h|4h|1d)"), _K.ROLLING_TICKER),
    (re.compile(r"kline_(?P<param>\w+?)(?P<tz>@[+-]\d\d:\d\d)?"), _K.KLINE),
    (re.compile(r"depth(?P<param>5|10|20)(?P<speed>@100ms|@500ms)?"), _K.PARTIAL_DEPTH),
    (re.compile(r"depth(?P<speed>@100ms|@500ms)?"), _K.DIFF_DEPTH),
    (re.compile(r"rpiDepth(?P<speed>@500ms)"), _K.RPI_DEPTH),
    (re.compile(r"markPrice(?P<speed>@1s)?"), _K.MARK_PRICE),
    (re.compile(r"indexPrice(?P<speed>@1s)?"), _K.INDEX_PRICE),
    (re.compile(r"continuousKline_(?P<param>\w+)"), _K.CONTINUOUS_KLINE),
    (re.compile(r"markPriceKline_(?P<param>\w+)"), _K.MARK_PRICE_KLINE),
    (re.compile(r"indexPriceKline_(?P<param>\w+)"), _K.INDEX_PRICE_KLINE),
)


@dataclass(frozen=True, slots=True)
class StreamKey:
    """A parsed stream name. ``subject`` is the uppercase symbol, pair or asset ("" = all)."""

    kind: Kind
    subject: str = ""
    param: str = ""
    """Interval, rolling window, depth levels, or (continuous klines) the contract type."""
    speed: str = ""
    """``""``, ``@100ms``, ``@500ms`` or ``@1s``, as written in the name."""
    tz: str = ""
    """Kline timezone offset such as ``+08:00``."""

    @property
    def symbol(self) -> str:
        """The subject (v0 name)."""
        return self.subject

    @property
    def channel(self) -> Channel | None:
        """The v0 channel, for trade and aggTrade keys."""
        return {_K.TRADE: Channel.TRADE, _K.AGG_TRADE: Channel.AGG_TRADE}.get(self.kind)


class StreamRequestError(ValueError):
    """A connection URL or subscription the simulator refuses; ``reason`` is the close reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UnknownPathError(StreamRequestError):
    """A URL path that is no stream endpoint of this market: answered with HTTP 404."""


@dataclass(frozen=True, slots=True)
class ConnectionRequest:
    """What a client asked for in its URL."""

    streams: tuple[str, ...]
    combined: bool
    time_unit: TimeUnit
    route: Route = Route.NONE
    events: tuple[str, ...] = field(default=())
    """``/private`` only: the user-data event types asked for (empty = all)."""


def stream_name(symbol: str, channel: Channel | str) -> str:
    """``stream_name("BTCUSDT", Channel.TRADE) == "btcusdt@trade"``."""
    suffix = channel.value if isinstance(channel, Channel) else channel
    return f"{symbol.lower()}@{suffix}"


def parse_stream_name(name: str) -> StreamKey | None:
    """Parse any documented stream name; ``None`` when it is not one.

    Symbols must be lowercase: Binance documents lowercase names, and an uppercase one is the
    classic client mistake the simulator should expose rather than forgive.
    """
    if name in _GLOBAL:
        kind, speed = _GLOBAL[name]
        return StreamKey(kind, speed=speed)
    if match := _ROLLING_ALL.fullmatch(name):
        return StreamKey(_K.ALL_ROLLING_TICKER, param=match[1])
    subject, at, suffix = name.partition("@")
    if not at or not _SUBJECT.fullmatch(subject):
        return None
    if suffix in _SIMPLE:
        return StreamKey(_SIMPLE[suffix], subject.upper())
    for pattern, kind in _SUFFIXES:
        if match := pattern.fullmatch(suffix):
            groups = match.groupdict()
            param, speed, tz = groups.get("param") or "", groups.get("speed") or "", ""
            if groups.get("tz"):
                tz = groups["tz"][1:]
            return StreamKey(kind, subject.upper(), param, speed, tz)
    return None


def parse_connection_target(target: str, *, routed: bool = False) -> ConnectionRequest:
    """Parse a request target such as ``/stream?streams=a/b&timeUnit=MICROSECOND``.

    Names are URL-decoded (docs/binance.md §1.1) and de-duplicated in order; they are not validated here
    (see :class:`StreamCatalog`). With ``routed`` (USDⓈ-M), the path may start with a route.

    Raises:
        UnknownPathError: the path is not a stream endpoint.
        StreamRequestError: the ``timeUnit`` is not one Binance accepts.
    """
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    time_unit = _parse_time_unit(query.get("timeUnit", []))
    path = parts.path.rstrip("/") or "/"
    route = Route.NONE
    if routed:
        for candidate in (Route.PUBLIC, Route.MARKET, Route.PRIVATE):
            if path == candidate.value or path.startswith(candidate.value + "/"):
                route, path = candidate, path[len(candidate.value) :] or "/"
    if route is Route.PRIVATE:
        keys = tuple(dict.fromkeys(k for k in query.get("listenKey", []) if k))
        events = "/".join(query.get("events", []))
        combined = path == COMBINED_PATH
        if path not in (RAW_PATH, COMBINED_PATH):
            raise UnknownPathError(f"Unknown path {parts.path}")
        return ConnectionRequest(keys, combined, time_unit, route, _split_names(events))
    if path == COMBINED_PATH:
        names = "/".join(query.get("streams", []))
        return ConnectionRequest(_split_names(names), True, time_unit, route)
    if path == RAW_PATH or path.startswith(RAW_PATH + "/"):
        names = path[len(RAW_PATH) + 1 :]
        return ConnectionRequest(_split_names(names), False, time_unit, route)
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


def route_of(key: StreamKey) -> Route:
    """The USDⓈ-M route that serves ``key``."""
    return Route.PUBLIC if key.kind in PUBLIC_ROUTE_KINDS else Route.MARKET


def split_continuous(subject: str) -> tuple[str, str] | None:
    """``"BTCUSDT_PERPETUAL"`` -> ``("BTCUSDT", "PERPETUAL")``; ``None`` if no contract type."""
    for contract_type in CONTRACT_TYPES:
        suffix = "_" + contract_type.upper()
        if subject.endswith(suffix) and len(subject) > len(suffix):
            return subject[: -len(suffix)], contract_type.upper()
    return None


class StreamCatalog:
    """The streams that exist on this simulator: what its market offers, for its symbols."""

    def __init__(self, symbols: Iterable[str], market: Market = Market.SPOT) -> None:
        self.market = market
        self._kinds = KINDS_BY_MARKET[market]
        self._intervals = SPOT_INTERVALS if market is Market.SPOT else FUTURES_INTERVALS
        self._cache: dict[str, StreamKey | None] = {}
        self._set_symbols(symbol.upper() for symbol in symbols)

    def add_symbol(self, symbol: str) -> None:
        """A listing: the symbol's streams exist from now on (a delisting keeps them: Binance
        accepts the subscription and sends nothing)."""
        self._set_symbols([*self.symbols, symbol.upper()])

    def _set_symbols(self, symbols: Iterable[str]) -> None:
        self.symbols = frozenset(symbols)
        self.pairs = frozenset(symbol.split("_", 1)[0] for symbol in self.symbols)
        self.assets = frozenset(_asset_symbols(self.symbols))
        self._cache.clear()  # names refused before may exist now

    def key(self, name: str) -> StreamKey | None:
        """The key of ``name`` if this simulator publishes it, else ``None``."""
        try:
            return self._cache[name]
        except KeyError:
            pass
        key = parse_stream_name(name)
        if key is not None and not self._valid(key):
            key = None
        if len(self._cache) < 100_000:  # names come from clients: bound the memo
            self._cache[name] = key
        return key

    def is_known(self, name: str) -> bool:
        """Whether ``name`` is a stream this simulator publishes."""
        return self.key(name) is not None

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

    def _valid(self, key: StreamKey) -> bool:
        kind = key.kind
        if kind not in self._kinds or not self._speed_ok(key):
            return False
        if kind in (_K.KLINE, _K.MARK_PRICE_KLINE, _K.INDEX_PRICE_KLINE, _K.CONTINUOUS_KLINE):
            # USDⓈ-M's continuous klines also come in 1s (its SDK's interval enum); COIN-M's not.
            usdm_continuous = kind is _K.CONTINUOUS_KLINE and self.market is Market.USDM
            extra = ("1s",) if usdm_continuous else ()
            if key.param not in (*self._intervals, *extra):
                return False
            if key.tz and (self.market is not Market.SPOT or key.tz not in TIMEZONE_OFFSETS):
                return False
        return self._subject_ok(key)

    def _speed_ok(self, key: StreamKey) -> bool:
        kind, speed = key.kind, key.speed
        if kind in (_K.DIFF_DEPTH, _K.PARTIAL_DEPTH):
            return speed in _SPEEDS[self.market]
        if kind is _K.RPI_DEPTH:
            return speed == "@500ms"
        return speed in ("", "@1s")

    def _subject_ok(self, key: StreamKey) -> bool:
        kind, subject = key.kind, key.subject
        if kind.value.startswith("!") or kind is _K.TRADING_SESSION:
            return not subject
        if kind in (_K.INDEX_PRICE, _K.INDEX_PRICE_KLINE):
            return subject in self.pairs
        if kind is _K.CONTINUOUS_KLINE:
            split = split_continuous(subject)
            # Every simulated contract is perpetual; a quarter contract does not exist here.
            return split is not None and split[0] in self.pairs and split[1] == "PERPETUAL"
        if kind is _K.ASSET_INDEX:
            return subject in self.assets
        if kind is _K.MARK_PRICE and self.market is Market.COINM:
            return subject in self.symbols or subject in self.pairs
        return subject in self.symbols


def _asset_symbols(symbols: Iterable[str]) -> set[str]:
    """Multi-assets-mode index names (``BTCUSD``, ``USDTUSD``) for the symbols' assets."""
    from gateway.simulator.engine import split_symbol  # local: engine imports markets only

    assets: set[str] = set()
    for symbol in symbols:
        assets.update(split_symbol(symbol))
    return {f"{asset}USD" for asset in assets if asset != "USD"}
