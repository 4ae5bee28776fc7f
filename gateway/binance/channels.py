"""Which streams each market serves, as data: channel, stream name, route and event kind.

A configured channel (``kline_1m``) becomes a stream name by its *subject*: the symbol
(``btcusdt@kline_1m``), the pair (COIN-M ``btcusd@indexPrice``) or the pair and contract type
(``btcusdt_perpetual@continuousKline_1m``); market-wide streams (``!miniTicker@arr``) have none.
Which route of the market's stream host serves a stream is a table per market, not code: Binance
moved USDⓈ-M streams onto ``/public`` and ``/market`` in 2026 and peers dispute whether COIN-M
followed, so an operator can override an entry (``binance.markets.<m>.routes``) without a release.

``docs/binance-streams.md`` is this module for people, with the sources; a test parses its tables
and proves the code builds exactly the names and routes it lists.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gateway.binance.markets import Market

SPOT_INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
                  "1d", "3d", "1w", "1M")  # fmt: skip
FUTURES_INTERVALS = SPOT_INTERVALS[1:]
PLACEHOLDERS: Mapping[Market, Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        Market.SPOT: {
            "<interval>": SPOT_INTERVALS,
            "<levels>": ("5", "10", "20"),
            "<window>": ("1h", "4h", "1d"),
        },
        Market.USDM: {"<interval>": FUTURES_INTERVALS, "<levels>": ("5", "10", "20")},
        Market.COINM: {"<interval>": FUTURES_INTERVALS, "<levels>": ("5", "10", "20")},
    }
)
"""The values a placeholder of a channel template stands for, per market (docs/binance.md §3, §4)."""

Route = str
"""A path prefix on the market's stream host: ``""`` (none), ``/public`` or ``/market``."""
ROUTES: tuple[Route, ...] = ("", "/public", "/market")
ANY_FAMILY = "*"
"""Route-table key that stands for every family without an entry of its own."""


class Subject(enum.Enum):
    """What a stream name starts with; the value is how the docs write it."""

    SYMBOL = "<symbol>"
    PAIR = "<pair>"
    PAIR_CONTRACT = "<pair>_<contracttype>"
    NONE = ""
    """A market-wide stream: the channel is the whole name."""


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """One channel a market serves: how it is configured, named, routed and recorded."""

    template: str
    """The channel as configured, placeholders in angle brackets: ``kline_<interval>``."""
    subject: Subject
    kind: str
    """The event kind, hence the topic ``<prefix>.<market>.<kind>``."""
    pattern: re.Pattern[str]

    @property
    def family(self) -> str:
        """The route-table key: ``kline`` for ``kline_<interval>``, ``!bookTicker``..."""
        match = re.match(r"!?[A-Za-z]+", self.template)
        assert match is not None  # every template starts with a name
        return match.group()

    @property
    def name_template(self) -> str:
        """The stream name as Binance's documentation writes it."""
        if self.subject is Subject.NONE:
            return self.template
        return f"{self.subject.value}@{self.template}"


def _spec(market: Market, template: str, subject: Subject, kind: str) -> ChannelSpec:
    pattern = re.escape(template)
    for placeholder, values in PLACEHOLDERS[market].items():
        pattern = pattern.replace(re.escape(placeholder), "(?:" + "|".join(values) + ")")
    return ChannelSpec(template, subject, kind, re.compile(pattern))


_S, _P, _PC, _W = Subject.SYMBOL, Subject.PAIR, Subject.PAIR_CONTRACT, Subject.NONE
_DEPTHS = [
    (f"depth{levels}{speed}", kind)
    for levels, kind in (("", "depth_update"), ("<levels>", "depth_snapshot"))
    for speed in ("", "@100ms", "@500ms")
]
_COMMON = [
    ("aggTrade", _S, "agg_trade"),
    ("bookTicker", _S, "book_ticker"),
    ("miniTicker", _S, "mini_ticker"),
    ("ticker", _S, "ticker"),
    ("kline_<interval>", _S, "kline"),
    ("!miniTicker@arr", _W, "mini_ticker"),
]
_FUTURES = [
    *_COMMON,
    ("trade", _S, "trade"),
    ("markPrice", _S, "mark_price"),
    ("markPrice@1s", _S, "mark_price"),
    ("continuousKline_<interval>", _PC, "continuous_kline"),
    ("forceOrder", _S, "force_order"),
    *((template, _S, kind) for template, kind in _DEPTHS),
    ("!ticker@arr", _W, "ticker"),
    ("!bookTicker", _W, "book_ticker"),
    ("!forceOrder@arr", _W, "force_order"),
    ("!contractInfo", _W, "contract_info"),
]
_ROWS: dict[Market, list[tuple[str, Subject, str]]] = {
    Market.SPOT: [
        *_COMMON,
        ("trade", _S, "trade"),
        ("blockTrade", _S, "block_trade"),
        ("referencePrice", _S, "reference_price"),
        ("avgPrice", _S, "avg_price"),
        ("ticker_<window>", _S, "rolling_ticker"),
        ("kline_<interval>@+08:00", _S, "kline"),
        *((t, _S, k) for t, k in _DEPTHS if not t.endswith("@500ms")),  # spot: 1000 or 100 ms
        ("!ticker_<window>@arr", _W, "rolling_ticker"),
    ],
    Market.USDM: [
        *_FUTURES,
        ("continuousKline_1s", _PC, "continuous_kline"),  # USDⓈ-M only (SDK interval enum)
        ("rpiDepth@500ms", _S, "rpi_depth_update"),
        ("compositeIndex", _S, "composite_index"),
        ("!markPrice@arr", _W, "mark_price"),
        ("!markPrice@arr@1s", _W, "mark_price"),
        ("!assetIndex@arr", _W, "asset_index"),
        ("tradingSession", _W, "trading_session"),
    ],
    Market.COINM: [
        *_FUTURES,
        ("markPriceKline_<interval>", _S, "mark_price_kline"),
        ("indexPrice", _P, "index_price"),
        ("indexPrice@1s", _P, "index_price"),
        ("indexPriceKline_<interval>", _P, "index_price_kline"),
    ],
}
CHANNELS: Mapping[Market, tuple[ChannelSpec, ...]] = MappingProxyType(
    {market: tuple(_spec(market, *row) for row in rows) for market, rows in _ROWS.items()}
)
"""Every channel each market serves (per-symbol, per-pair and market-wide), see the docs table."""

DEFAULT_CHANNELS: Mapping[Market, tuple[str, ...]] = MappingProxyType(
    {
        Market.SPOT: ("trade", "aggTrade"),
        Market.USDM: ("trade", "aggTrade"),
        # COIN-M documents no trade stream and the one 2026 report says it went silent on the
        # unrouted host (docs/binance-streams.md): aggregate trades, which it documents, only.
        Market.COINM: ("aggTrade",),
    }
)

ROUTE_TABLE: Mapping[Market, Mapping[str, Route]] = MappingProxyType(
    {
        Market.SPOT: {ANY_FAMILY: ""},
        # docs/binance.md §1.2: book streams on /public, the rest on /market; trade on /public
        # as measured live (Binance's list does not name it), docs/binance-streams.md.
        Market.USDM: {
            ANY_FAMILY: "/market",
            "trade": "/public",
            "bookTicker": "/public",
            "!bookTicker": "/public",
            "depth": "/public",
            "rpiDepth": "/public",
        },
        # Binance's COIN-M pages and SDK use no route; disputed (docs/binance-streams.md).
        Market.COINM: {ANY_FAMILY: ""},
    }
)
"""Family → route per market; ``binance.markets.<m>.routes`` overrides entries."""


def spec_of(market: Market, channel: str) -> ChannelSpec | None:
    """The spec of a configured channel or market-wide stream, ``None`` if ``market`` has none."""
    return next((s for s in CHANNELS[market] if s.pattern.fullmatch(channel)), None)


def validate_channels(market: Market, channels: Iterable[str], *, wide: bool) -> tuple[str, ...]:
    """``channels`` if ``market`` serves each (per-subject ones, or market-wide when ``wide``).

    Raises:
        ValueError: naming the first channel the market does not serve.
    """
    checked = tuple(channels)
    for channel in checked:
        spec = spec_of(market, channel)
        if spec is None or (spec.subject is Subject.NONE) != wide:
            what = "market-wide stream" if wide else "stream channel"
            served = sorted(s.template for s in CHANNELS[market] if (s.subject is _W) == wide)
            raise ValueError(
                f"{market.value} serves no {what} {channel!r}; it serves: {', '.join(served)} "
                "(docs/binance-streams.md)"
            )
    return checked


def validate_routes(market: Market, routes: Mapping[str, Route]) -> Mapping[str, Route]:
    """Route overrides whose families ``market`` serves and whose routes exist."""
    if routes and market is Market.SPOT:
        raise ValueError("spot has no routed stream endpoints; leave `routes` empty")
    families = {spec.family for spec in CHANNELS[market]} | {ANY_FAMILY}
    for family, route in routes.items():
        if family not in families:
            raise ValueError(f"{market.value} has no stream family {family!r}")
        if route not in ROUTES:
            raise ValueError(f"route {route!r} is not one of {ROUTES}")
    return routes


def route_of(market: Market, stream: str, overrides: Mapping[str, Route] | None = None) -> Route:
    """The route ``stream`` must be subscribed on: overrides first, then the table."""
    channel = stream if stream.startswith("!") else stream.partition("@")[2] or stream
    spec = spec_of(market, channel)
    family = spec.family if spec is not None else ANY_FAMILY
    for table in (overrides or {}, ROUTE_TABLE[market]):
        if family in table:
            return table[family]
    for table in (overrides or {}, ROUTE_TABLE[market]):
        if ANY_FAMILY in table:
            return table[ANY_FAMILY]
    return ""


@dataclass(frozen=True, slots=True)
class Instrument:
    """What a stream name can need of one symbol: its pair and contract type (futures)."""

    symbol: str
    pair: str | None = None
    contract_type: str | None = None
    """``PERPETUAL``, ``CURRENT_QUARTER``...; None when unknown (no exchangeInfo yet)."""


def subject_of(spec: ChannelSpec, instrument: Instrument) -> str | None:
    """The upper-case subject of ``spec``'s stream for ``instrument``; None when unknown."""
    if spec.subject is Subject.SYMBOL:
        return instrument.symbol
    if spec.subject is Subject.PAIR:
        return instrument.pair
    if spec.subject is Subject.PAIR_CONTRACT and instrument.pair and instrument.contract_type:
        return f"{instrument.pair}_{instrument.contract_type}"
    return None


def stream_for(market: Market, instrument: Instrument, channel: str) -> str | None:
    """The stream name of ``channel`` for ``instrument``; None when its subject is unknown.

    ``stream_for(USDM, Instrument("BTCUSDT", "BTCUSDT", "PERPETUAL"), "continuousKline_1m")``
    is ``btcusdt_perpetual@continuousKline_1m``.

    Raises:
        ValueError: ``market`` serves no such per-subject channel.
    """
    spec = spec_of(market, channel)
    if spec is None or spec.subject is Subject.NONE:
        raise ValueError(f"{market.value} serves no stream channel {channel!r}")
    subject = subject_of(spec, instrument)
    if subject is None:
        return None
    if not subject or "@" in subject or "/" in subject:
        raise ValueError(f"not a stream subject: {subject!r}")
    return f"{subject.lower()}@{channel}"
