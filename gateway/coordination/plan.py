"""The shard plan, pure: which streams exist, grouped into shards that workers can own.

A shard is the unit of ownership: one partition of the control topic stands for one shard, and
the worker that owns the partition streams the shard. Two rules shape the plan:

* **The layout depends on configuration only.** :func:`shard_ids` lists every shard from the
  settings alone (markets in the order spot, usdm, coinm; per market ``shards`` symbol slots,
  then a ``-wide`` shard for its market-wide streams if it has any), so every worker computes the
  same partition layout whatever exchangeInfo said to it. Empty shards still exist.
* **A symbol's place depends on its name only.** :func:`slot_of` hashes the symbol (blake2b, not
  Python's salted ``hash()``) into one of the market's slots, and all of the symbol's streams go
  there together. A listing or delisting therefore changes exactly one shard and moves no other
  stream: the fewest streams that can move. Pair-keyed streams (COIN-M index price, continuous
  klines: docs/binance-streams.md) hash by their pair, so the contracts of one pair share them
  once and a quarterly contract's roll-over does not move them.

The symbol universe of a market is its explicit ``symbols`` (minus those exchangeInfo no longer
lists as trading, when listings are given), or its ``select`` filter over exchangeInfo. A shard
whose streams do not fit one connection is :meth:`ShardPlan.oversized`: the cure is more slots.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gateway.binance.channels import Instrument, Route, Subject, route_of, spec_of, stream_for
from gateway.binance.exchange_info import ListedSymbol
from gateway.binance.markets import SPOT_LIMITS, Market
from gateway.binance.settings import BinanceSettings, MarketSettings, SymbolSelection
from gateway.binance.streams import chunk

MARKET_ORDER = (Market.SPOT, Market.USDM, Market.COINM)
"""The fixed order of markets in the layout: never the order of a settings dict."""
WIDE = "wide"
DEFAULT_STREAM_WEIGHT = 1.0
DEFAULT_MAX_STREAMS = SPOT_LIMITS.max_streams_per_connection

# Expected events per second of one stream of a busy symbol, by channel (first match wins).
# Rough on purpose: the assignor needs "depth@100ms weighs ten klines", not a forecast.
_CHANNEL_WEIGHTS: tuple[tuple[re.Pattern[str], float], ...] = tuple(
    (re.compile(pattern), weight)
    for pattern, weight in (
        (r"^!bookTicker$", 500.0),  # every book change of every symbol
        (r"^!(miniTicker|ticker|ticker_\w+)@arr$", 100.0),  # one array a second, ~all symbols
        (r"^!markPrice@arr(@1s)?$", 100.0),
        (r"^!forceOrder@arr$", 5.0),
        (r"^!(contractInfo|assetIndex@arr)$", 1.0),
        (r"^bookTicker$", 30.0),  # real time
        (r"^trade$", 10.0),
        (r"^aggTrade$", 5.0),
        (r"^(rpiDepth|depth\d*)@100ms$", 10.0),
        (r"^(rpiDepth|depth\d*)@250ms$", 4.0),
        (r"^(rpiDepth|depth\d*)@500ms$", 2.0),
        (r"^depth\d*$", 4.0),  # spot: every 1000 ms; futures: every 250 ms
        (r"^(kline|continuousKline|markPriceKline|indexPriceKline)_", 1.0),
        (r"^(markPrice|indexPrice)$", 0.34),  # every 3 s
        (r"^(blockTrade|forceOrder)$", 0.1),
    )
)
# What a stream name can carry: Binance's ASCII symbols. A listed name outside it (USDⓈ-M has
# listed symbols in Chinese characters) would be percent-encoded in the URL and break the
# length arithmetic of chunk(); such symbols are left out of a selection.
_STREAMABLE_SYMBOL = re.compile(r"^[A-Z0-9_]+$")


def stream_weight(stream: str) -> float:
    """Expected events per second of ``stream`` (``btcusdt@depth@100ms``, ``!bookTicker``)."""
    channel = stream if stream.startswith("!") else stream.partition("@")[2]
    for pattern, weight in _CHANNEL_WEIGHTS:
        if pattern.search(channel):
            return weight
    return DEFAULT_STREAM_WEIGHT


def slot_of(symbol: str, slots: int) -> int:
    """The symbol slot of ``symbol`` among ``slots``: stable across processes and versions."""
    if slots < 1:
        raise ValueError("slots must be at least 1")
    digest = hashlib.blake2b(symbol.upper().encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % slots


def shard_id(market: Market, slot: int | None) -> str:
    """``spot-007`` for a symbol slot, ``spot-wide`` (``slot=None``) for market-wide streams."""
    return f"{market.value}-{WIDE if slot is None else format(slot, '03d')}"


def _markets(settings: BinanceSettings) -> list[tuple[Market, MarketSettings]]:
    return [
        (market, settings.markets[market]) for market in MARKET_ORDER if market in settings.markets
    ]


def shard_ids(settings: BinanceSettings) -> tuple[str, ...]:
    """Every shard id in partition order (partition i of the control topic = shard i)."""
    ids: list[str] = []
    for market, market_settings in _markets(settings):
        ids.extend(shard_id(market, slot) for slot in range(market_settings.shards))
        if market_settings.market_wide:
            ids.append(shard_id(market, None))
    return tuple(ids)


@dataclass(frozen=True, slots=True)
class Shard:
    """A set of streams one worker owns: one symbol slot, or a market's market-wide streams."""

    id: str
    market: Market
    symbols: tuple[str, ...]
    streams: tuple[str, ...]
    weight: float
    """Expected events per second (:func:`stream_weight` summed): what the assignor balances."""


@dataclass(frozen=True, slots=True)
class StreamChange:
    """What one shard gains and loses between two plans."""

    added: tuple[str, ...]
    removed: tuple[str, ...]


def connections_needed(shard: Shard, settings: BinanceSettings) -> int:
    """How many connections ``shard``'s streams take (0 for an empty shard)."""
    market_settings = settings.markets[shard.market]
    limit = market_settings.max_streams_per_connection
    return sum(_connections_per_route(shard, limit, market_settings.routes))


def streams_by_route(
    market: Market, streams: Iterable[str], overrides: Mapping[str, Route] | None = None
) -> dict[Route, list[str]]:
    """``streams`` grouped by the route that serves them (docs/binance-streams.md), order kept."""
    by_route: dict[Route, list[str]] = {}
    for name in streams:
        by_route.setdefault(route_of(market, name, overrides), []).append(name)
    return by_route


def _connections_per_route(
    shard: Shard, limit: int, overrides: Mapping[str, Route] | None = None
) -> list[int]:
    """Connections per route, chunked by count and URL length as the worker does: routes
    (USDⓈ-M's ``/public`` and ``/market``) are separate connections by nature."""
    by_route = streams_by_route(shard.market, shard.streams, overrides)
    return [len(chunk(names, limit)) for names in by_route.values()]


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """Every shard of the layout, in partition order, with the streams each holds now."""

    shards: tuple[Shard, ...]
    stream_limits: tuple[tuple[Market, int], ...] = ()
    """Per market: max streams per connection (1024 when absent), for :meth:`oversized`."""
    route_overrides: tuple[tuple[Market, tuple[tuple[str, Route], ...]], ...] = ()
    """Per market: the configured route-table overrides, for :meth:`connections`."""
    missing_listings: tuple[Market, ...] = ()
    """Markets whose ``select`` had no exchangeInfo to select from: their symbol shards are
    empty until listings arrive."""
    not_trading: tuple[tuple[Market, str], ...] = ()
    """Explicit symbols left out because exchangeInfo does not list them as TRADING (delisted,
    halted, or a typo), sorted."""
    _by_id: dict[str, Shard] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {shard.id: shard for shard in self.shards})

    @property
    def ids(self) -> tuple[str, ...]:
        """The shard ids in partition order."""
        return tuple(shard.id for shard in self.shards)

    @property
    def fingerprint(self) -> str:
        """A hash of the shard-id layout only: workers that disagree have different configs."""
        return hashlib.blake2b("\n".join(self.ids).encode(), digest_size=8).hexdigest()

    def shard(self, shard_id: str) -> Shard:
        """The shard called ``shard_id``.

        Raises:
            KeyError: no shard of this layout has that id.
        """
        try:
            return self._by_id[shard_id]
        except KeyError:
            raise KeyError(f"no shard {shard_id!r} in this plan") from None

    def symbols(self, market: Market) -> tuple[str, ...]:
        """Every symbol the plan streams on ``market``, sorted."""
        return tuple(
            sorted(s for shard in self.shards if shard.market is market for s in shard.symbols)
        )

    def connections(self, shard: Shard) -> int:
        """Connections ``shard`` needs under this plan's per-connection limits."""
        return sum(self._per_route(shard))

    def oversized(self) -> tuple[Shard, ...]:
        """Shards that do not fit one connection (per USDⓈ-M route): too many streams, or too
        long a URL. A larger ``shards`` value spreads their symbols thinner."""
        return tuple(shard for shard in self.shards if max(self._per_route(shard), default=0) > 1)

    def _per_route(self, shard: Shard) -> list[int]:
        limit = dict(self.stream_limits).get(shard.market, DEFAULT_MAX_STREAMS)
        overrides = dict(dict(self.route_overrides).get(shard.market, ()))
        return _connections_per_route(shard, limit, overrides)


def build_plan(
    settings: BinanceSettings, listings: Mapping[Market, Sequence[ListedSymbol]] | None = None
) -> ShardPlan:
    """The plan for ``settings``, following ``listings`` (exchangeInfo per market) if given.

    Deterministic: the same settings and the same set of listings give an equal plan, whatever
    order the listings come in.
    """
    listings = listings or {}
    shards: list[Shard] = []
    missing: list[Market] = []
    not_trading: list[tuple[Market, str]] = []
    for market, market_settings in _markets(settings):
        if market_settings.select is not None and market not in listings:
            missing.append(market)
        listed = listings.get(market)
        universe = _universe(market_settings, listed)
        if market_settings.select is None:
            left_out = set(market_settings.symbols) - set(universe)
            not_trading.extend((market, symbol) for symbol in sorted(left_out))
        entries = {entry.symbol: entry for entry in listed or ()}
        instruments = [_instrument(market, symbol, entries.get(symbol)) for symbol in universe]
        shards.extend(_market_shards(market, market_settings, instruments))
    limits = tuple((m, s.max_streams_per_connection) for m, s in _markets(settings))
    routes = tuple((m, tuple(sorted(s.routes.items()))) for m, s in _markets(settings))
    return ShardPlan(tuple(shards), limits, routes, tuple(missing), tuple(not_trading))


def _instrument(market: Market, symbol: str, entry: ListedSymbol | None) -> Instrument:
    """What the stream names need of ``symbol``: exchangeInfo's pair and contract type.

    Without exchangeInfo, a futures pair is the symbol before ``_`` (Binance names contracts
    ``<pair>_<delivery>``, docs/binance.md §4), and only COIN-M's ``_PERP`` tells the contract type;
    other pair-and-contract streams wait for exchangeInfo rather than guess a name.
    """
    if market is Market.SPOT:
        return Instrument(symbol)
    if entry is not None and entry.pair:
        return Instrument(symbol, entry.pair, entry.contract_type or None)
    pair, _, delivery = symbol.partition("_")
    contract_type = "PERPETUAL" if market is Market.COINM and delivery == "PERP" else None
    return Instrument(symbol, pair, contract_type)


def _universe(
    market_settings: MarketSettings, listed: Sequence[ListedSymbol] | None
) -> tuple[str, ...]:
    """The symbols a market streams: explicit ones still trading, or the selection."""
    selection = market_settings.select
    if selection is None:
        if listed is None:
            return market_settings.symbols
        trading = {entry.symbol for entry in listed if entry.is_trading}
        return tuple(symbol for symbol in market_settings.symbols if symbol in trading)
    return select_symbols(selection, listed or ())


def select_symbols(selection: SymbolSelection, listed: Iterable[ListedSymbol]) -> tuple[str, ...]:
    """The symbols of ``listed`` that ``selection`` keeps, sorted by name, cut at max_symbols.

    ``contract_types`` applies to futures entries only (spot has no contract type).
    """
    chosen = sorted(
        {
            entry.symbol
            for entry in listed
            if entry.status in selection.statuses
            and (not selection.quote_assets or entry.quote_asset in selection.quote_assets)
            and (
                not selection.contract_types
                or entry.contract_type is None
                or entry.contract_type in selection.contract_types
            )
            and entry.symbol not in selection.exclude
            and _STREAMABLE_SYMBOL.match(entry.symbol)
        }
    )
    return tuple(chosen[: selection.max_symbols])


def _market_shards(
    market: Market, market_settings: MarketSettings, instruments: Iterable[Instrument]
) -> list[Shard]:
    count = market_settings.shards
    symbols: list[list[str]] = [[] for _ in range(count)]
    streams: list[set[str]] = [set() for _ in range(count)]
    for instrument in instruments:
        symbols[slot_of(instrument.symbol, count)].append(instrument.symbol)
        for channel in market_settings.channels:
            name = stream_for(market, instrument, channel)
            if name is not None:
                streams[slot_of(_slot_key(market, instrument, channel), count)].add(name)
    shards = [
        _shard(shard_id(market, slot), market, symbols[slot], streams[slot])
        for slot in range(count)
    ]
    if market_settings.market_wide:
        shards.append(_shard(shard_id(market, None), market, [], market_settings.market_wide))
    return shards


def _slot_key(market: Market, instrument: Instrument, channel: str) -> str:
    """What places a stream: its symbol, or for a pair-keyed stream its pair, so the contracts of
    one pair share it once and a quarterly roll-over does not move it."""
    spec = spec_of(market, channel)
    if spec is None or spec.subject is Subject.SYMBOL or not instrument.pair:
        return instrument.symbol
    return instrument.pair


def _shard(id_: str, market: Market, symbols: Iterable[str], streams: Iterable[str]) -> Shard:
    ordered = tuple(sorted(set(streams)))
    weight = round(sum((stream_weight(name) for name in ordered), 0.0), 6)
    return Shard(id_, market, tuple(sorted(symbols)), ordered, weight)


def diff(old: ShardPlan, new: ShardPlan) -> dict[str, StreamChange]:
    """Per shard id, the streams ``new`` adds and removes relative to ``old`` (changed only).

    A shard present in one plan only (a layout change) counts as all added or all removed.
    """
    changes: dict[str, StreamChange] = {}
    before = {shard.id: set(shard.streams) for shard in old.shards}
    after = {shard.id: set(shard.streams) for shard in new.shards}
    for shard_id_ in [*new.ids, *(i for i in old.ids if i not in after)]:
        was, now = before.get(shard_id_, set()), after.get(shard_id_, set())
        if was != now:
            changes[shard_id_] = StreamChange(tuple(sorted(now - was)), tuple(sorted(was - now)))
    return changes
