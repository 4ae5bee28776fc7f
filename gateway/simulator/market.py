"""One simulated market, pure: books, trades, candles, and the payload of any stream at any time.

:class:`SimulatedMarket` is the single owner of a market's state. The trading loop calls
:meth:`SimulatedMarket.step` for each taker order (the book, candles and depth accumulators
follow); the periodic publisher asks :meth:`SimulatedMarket.render` what a stream says now. Both
the servers and the conformance tests go through :meth:`render`, so what the tests check is what
the sockets carry. No I/O and no clock: every call receives the time.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from gateway.simulator.book import DepthAccumulator, OrderBook
from gateway.simulator.candles import (
    DAY_MS,
    MINUTE_MS,
    ROLLING_WINDOWS,
    Candle,
    SymbolCandles,
    parse_offset,
    window,
)
from gateway.simulator.engine import UNITS_PER_WHOLE, Fill, MarketEngine, SymbolSpec
from gateway.simulator.markets import Market, MarketProfile, profile
from gateway.simulator.merger import MERGED_KINDS, OTHER_FUTURES, stamp
from gateway.simulator.payloads import Payload, TimeUnit
from gateway.simulator.render_futures import (
    Liquidation,
    Prices,
    asset_index_payload,
    composite_index_payload,
    continuous_kline_payload,
    contract_info_payload,
    force_order_payload,
    index_price_payload,
    mark_price_payload,
    price_kline_payload,
    trading_session_payload,
)
from gateway.simulator.render_market import (
    BlockTrade,
    TickerInputs,
    avg_price_payload,
    book_ticker_payload,
    depth_diff_payload,
    futures_partial_depth_payload,
    kline_payload,
    mini_ticker_payload,
    partial_depth_payload,
    reference_price_payload,
    ticker_payload,
)
from gateway.simulator.streams import Kind, StreamKey, split_continuous

Maker = Callable[[TimeUnit], object]
"""Builds one frame's payload in a connection's time unit."""

_K = Kind
_ARRAY_KINDS = frozenset({_K.ALL_MINI_TICKER, _K.ALL_TICKER, _K.ALL_MARK_PRICE})
BLOCK_TRADE_EVERY = 500
"""One spot block trade per this many aggregate trades of a symbol."""
LIQUIDATION_PROBABILITY = 0.2
"""Chance that a futures symbol had a liquidation in a given second (the default)."""
_STABLE_ASSETS = frozenset({"USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USD"})

TRADING = "TRADING"
NON_TRADING_STATUSES: dict[Market, tuple[str, ...]] = {
    Market.SPOT: ("HALT", "BREAK", "CANCEL_ONLY"),
    Market.USDM: ("PENDING_TRADING", "PRE_DELIVERING", "DELIVERING", "DELIVERED", "PRE_SETTLE",
                  "SETTLING", "CLOSE"),
    Market.COINM: ("PENDING_TRADING", "PRE_DELIVERING", "DELIVERING", "DELIVERED", "PRE_SETTLE",
                   "SETTLING", "CLOSE"),
}  # fmt: skip
"""What exchangeInfo may show for a symbol that does not trade (docs/binance.md §7; futures docs' enums)."""
DELISTED_STATUS = {Market.SPOT: "BREAK", Market.USDM: "SETTLING", Market.COINM: "SETTLING"}
"""A delisting's state: spot symbols go to BREAK, futures contracts settle."""


@dataclass(slots=True)
class _StreamState:
    """What a periodic stream remembers between two of its events."""

    accumulator: DepthAccumulator | None = None
    kline_open_ms: int | None = None
    last_emit_ms: int = 0
    round_robin: int = 0


class SimulatedMarket:
    """A market's engine plus everything derived from it."""

    def __init__(
        self,
        market: Market,
        specs: Sequence[SymbolSpec],
        seed: int,
        *,
        max_trades_per_fill: int,
        merged: bool = True,
        other_market_specs: Sequence[SymbolSpec] = (),
        liquidation_probability: float = LIQUIDATION_PROBABILITY,
    ) -> None:
        self.market = market
        self.liquidation_probability = liquidation_probability
        self.merged = merged
        """Serve futures payloads as Binance does since the 2026-06-30 integration (st, ps, ap)."""
        self.other_market: SimulatedMarket | None = None
        """The other futures market's contracts, which the merged market-wide streams also
        carry (:mod:`gateway.simulator.merger`); they trade here only to move their tickers."""
        if other_market_specs and merged and market in OTHER_FUTURES:
            self.other_market = SimulatedMarket(
                OTHER_FUTURES[market],
                other_market_specs,
                seed,
                max_trades_per_fill=max_trades_per_fill,
            )
        self._other_turn = 0
        self.other_stepped: str | None = None
        """The other market's contract that traded with the last :meth:`step`."""
        self.profile: MarketProfile = profile(market)
        self.engine = MarketEngine(
            specs, seed, max_trades_per_fill=max_trades_per_fill, market=market
        )
        self.specs: dict[str, SymbolSpec] = {}
        self.pairs: dict[str, str] = {}
        self.by_pair: dict[str, list[SymbolSpec]] = {}
        self.candles: dict[str, SymbolCandles] = {}
        self.status: dict[str, str] = {}
        """exchangeInfo's state of each symbol: TRADING, or why not (see NON_TRADING_STATUSES)."""
        self.halted: set[str] = set()
        """Symbols not TRADING: no fills, no stream events."""
        self._seed = seed
        self._liquidations: dict[str, random.Random] = {}
        self._block_ids: dict[str, int] = {}
        self._streams: dict[str, _StreamState] = {}
        self._depth: dict[str, dict[str, DepthAccumulator]] = {}
        for spec in specs:
            self._add(spec)

    # --- listings -----------------------------------------------------------------------------

    def list_symbol(self, spec: SymbolSpec) -> None:
        """A listing: ``spec.symbol`` trades from now on (a delisted one trades again, its ids,
        book and candles continuing where they stopped)."""
        if spec.symbol not in self.specs:
            self.engine.add(spec)
            self._add(spec)
        self.status[spec.symbol] = TRADING
        self.halted.discard(spec.symbol)

    def delist_symbol(self, symbol: str, status: str | None = None) -> None:
        """A delisting: ``symbol`` stops trading and its streams go silent.

        Raises:
            KeyError: the symbol is not simulated.
            ValueError: ``status`` is not a non-trading state of this market.
        """
        status = status or DELISTED_STATUS[self.market]
        if symbol not in self.specs:
            raise KeyError(f"{symbol} is not simulated")
        if status not in NON_TRADING_STATUSES[self.market]:
            raise ValueError(
                f"{self.market.value} symbols stop trading as one of "
                f"{', '.join(NON_TRADING_STATUSES[self.market])}, not {status!r}"
            )
        self.status[symbol] = status
        self.halted.add(symbol)

    def is_trading(self, symbol: str) -> bool:
        """Whether ``symbol`` trades (and streams) now."""
        return symbol not in self.halted

    def _add(self, spec: SymbolSpec) -> None:
        self.specs[spec.symbol] = spec
        self.pairs[spec.symbol] = spec.pair
        self.by_pair.setdefault(spec.pair, []).append(spec)
        self.candles[spec.symbol] = SymbolCandles(spec.initial_price)
        self.status[spec.symbol] = TRADING
        self._liquidations[spec.symbol] = random.Random(f"{self._seed}:{spec.symbol}:liq")
        self._block_ids[spec.symbol] = spec.first_agg_trade_id

    def _trading(self) -> list[str]:
        return [symbol for symbol in self.specs if symbol not in self.halted]

    # --- the hot path -------------------------------------------------------------------------

    def step(self, symbol: str, now_us: int, max_trades: int | None = None) -> Fill:
        """One taker order on ``symbol``: the fill, with the book and candles updated."""
        fill = self.engine.next_fill(symbol, now_us, max_trades=max_trades)
        self.candles[symbol].record(fill.agg_trade)
        accumulators = self._depth.get(symbol)
        if accumulators:
            for accumulator in accumulators.values():
                accumulator.extend(fill.book_changes)
        if self.other_market is not None:
            # One of the other market's contracts trades too, so its tickers change.
            others = self.other_market._trading()
            if others:
                self._other_turn += 1
                self.other_stepped = others[self._other_turn % len(others)]
                self.other_market.step(self.other_stepped, now_us, max_trades)
        return fill

    def block_trade(self, fill: Fill) -> BlockTrade | None:
        """Spot's occasional block trade, printed next to a fill (it does not touch the book)."""
        agg = fill.agg_trade
        if self.market is not Market.SPOT or agg.agg_trade_id % BLOCK_TRADE_EVERY:
            return None
        block_id = self._block_ids[agg.symbol]
        self._block_ids[agg.symbol] = block_id + 1
        return BlockTrade(
            agg.symbol,
            block_id,
            agg.price,
            agg.quantity * 50,
            agg.trade_time_us,
            agg.event_time_us,
            not agg.buyer_is_maker,
        )

    def book(self, symbol: str) -> OrderBook:
        """The live book of ``symbol``."""
        return self.engine.book(symbol)

    def book_ticker(self, symbol: str, now_us: int) -> Maker:
        """The ``@bookTicker`` payload of ``symbol`` as it stands."""
        spec, book, market = self.specs[symbol], self.book(symbol), self.market
        if not self.merged:
            return lambda unit: book_ticker_payload(market, spec, book, now_us, unit)
        pairs = self.pairs
        return lambda unit: stamp(
            _K.BOOK_TICKER, market, book_ticker_payload(market, spec, book, now_us, unit), pairs
        )

    # --- periodic streams ---------------------------------------------------------------------

    def period_ms(self, key: StreamKey) -> int:
        """How often ``key`` publishes (docs/binance.md §3, §4)."""
        kind, prof = key.kind, self.profile
        if kind in (_K.DIFF_DEPTH, _K.PARTIAL_DEPTH, _K.RPI_DEPTH):
            return prof.diff_depth_speeds_ms[key.speed]
        if kind is _K.KLINE:
            return 1_000 if key.param == "1s" else prof.kline_period_ms
        if kind in (_K.CONTINUOUS_KLINE, _K.MARK_PRICE_KLINE, _K.INDEX_PRICE_KLINE):
            return prof.kline_period_ms
        if kind is _K.MINI_TICKER:
            return prof.mini_ticker_period_ms
        if kind is _K.TICKER:
            return prof.ticker_period_ms
        if kind in (_K.MARK_PRICE, _K.ALL_MARK_PRICE, _K.INDEX_PRICE):
            return 1_000 if key.speed == "@1s" else 3_000
        if kind is _K.ALL_BOOK_TICKER:
            return 5_000  # USDⓈ-M; COIN-M's is real-time (published with the trades)
        if kind is _K.CONTRACT_INFO:
            return 60_000  # "real-time" on contract changes, which are rare
        return 1_000

    def start(self, name: str, key: StreamKey) -> None:
        """A periodic stream got its first subscriber: start tracking what it needs."""
        state = self._streams.setdefault(name, _StreamState())
        if key.kind in (_K.DIFF_DEPTH, _K.RPI_DEPTH, _K.PARTIAL_DEPTH) and not state.accumulator:
            book = self.book(key.subject)
            state.accumulator = DepthAccumulator(book.last_update_id)
            self._depth.setdefault(key.subject, {})[name] = state.accumulator

    def stop(self, name: str, key: StreamKey) -> None:
        """A periodic stream lost its last subscriber."""
        self._streams.pop(name, None)
        accumulators = self._depth.get(key.subject)
        if accumulators is not None:
            accumulators.pop(name, None)

    def drop_pending_diffs(self, symbol: str) -> None:
        """Depth-gap fault: lose the next event of each of ``symbol``'s diff streams."""
        for accumulator in self._depth.get(symbol, {}).values():
            accumulator.lose_next()

    def render(self, name: str, key: StreamKey, now_us: int) -> list[Maker]:
        """The frames ``name`` sends at ``now_us``: none, one, or (klines closing) two."""
        self.start(name, key)
        state = self._streams[name]
        makers = list(self._render(key, state, now_us))
        state.last_emit_ms = now_us // 1_000
        if self.merged:
            makers = [self._stamped(key.kind, make) for make in makers]
        if self.other_market is not None and key.kind in MERGED_KINDS:
            makers = _merge(key.kind, makers, self.other_market.render(name, key, now_us))
        return makers

    def _stamped(self, kind: Kind, make: Maker) -> Maker:
        market, pairs = self.market, self.pairs
        return lambda unit: stamp(kind, market, make(unit), pairs)

    def _render(self, key: StreamKey, state: _StreamState, now_us: int) -> Iterator[Maker]:
        kind = key.kind
        if kind in (_K.DIFF_DEPTH, _K.RPI_DEPTH):
            yield from self._diff(key, state, now_us)
        elif kind is _K.PARTIAL_DEPTH:
            yield self._partial(key, state, now_us)
        elif kind in (_K.KLINE, _K.CONTINUOUS_KLINE, _K.MARK_PRICE_KLINE, _K.INDEX_PRICE_KLINE):
            yield from self._klines(key, state, now_us)
        elif kind is _K.MINI_TICKER:
            yield self._mini_ticker(key.subject, now_us)
        elif kind is _K.ALL_MINI_TICKER:
            yield from _array([self._mini_ticker(s, now_us) for s in self._changed(state)])
        elif kind in (_K.TICKER, _K.ROLLING_TICKER):
            yield self._ticker(key.subject, key.param, now_us)
        elif kind in (_K.ALL_TICKER, _K.ALL_ROLLING_TICKER):
            changed = self._changed(state)
            yield from _array([self._ticker(s, key.param, now_us) for s in changed])
        elif kind is _K.ALL_BOOK_TICKER:
            yield from (self.book_ticker(symbol, now_us) for symbol in self._trading())
        elif kind is _K.AVG_PRICE:
            yield self._avg_price(key.subject, now_us)
        elif kind is _K.REFERENCE_PRICE:
            spec, mid = self.specs[key.subject], self.mid(key.subject)
            yield lambda unit: reference_price_payload(spec, mid, now_us, unit)
        elif kind is _K.MARK_PRICE:
            yield from self._mark_prices(key.subject, now_us)
        elif kind is _K.ALL_MARK_PRICE:
            yield _array_of([self._mark_price(s, now_us) for s in self._trading()])
        elif kind in (_K.FORCE_ORDER, _K.ALL_FORCE_ORDER):
            symbols = [key.subject] if key.subject else self._trading()
            yield from (m for s in symbols if (m := self._liquidation(s, now_us)) is not None)
        else:
            yield from self._render_index(key, state, now_us)

    def _render_index(self, key: StreamKey, state: _StreamState, now_us: int) -> Iterator[Maker]:
        kind = key.kind
        if kind is _K.INDEX_PRICE:
            index = self.mid(self.by_pair[key.subject][0].symbol)
            yield lambda unit: index_price_payload(key.subject, index, now_us)
        elif kind is _K.COMPOSITE_INDEX:
            yield self._composite(key.subject, now_us)
        elif kind is _K.ASSET_INDEX:
            index = self._asset_price(key.subject)
            yield lambda unit: asset_index_payload(key.subject, index, now_us)
        elif kind is _K.ALL_ASSET_INDEX:
            assets = sorted(
                {f"{a}USD" for s in self.specs.values() for a in _assets(s)} - {"USDUSD"}
            )
            prices = [(asset, self._asset_price(asset)) for asset in assets]
            yield lambda unit: [asset_index_payload(a, p, now_us) for a, p in prices]
        elif kind is _K.CONTRACT_INFO:
            specs = list(self.specs.values())
            spec = specs[state.round_robin % len(specs)]
            state.round_robin += 1
            status = self.status[spec.symbol]
            yield lambda unit: contract_info_payload(spec, now_us, unit, status=status)
        elif kind is _K.TRADING_SESSION:
            yield lambda unit: trading_session_payload(now_us)

    # --- renderers ----------------------------------------------------------------------------

    def _diff(self, key: StreamKey, state: _StreamState, now_us: int) -> Iterator[Maker]:
        assert state.accumulator is not None
        diff = state.accumulator.take()
        if diff is not None:
            spec, market = self.specs[key.subject], self.market
            yield lambda unit: depth_diff_payload(market, spec, diff, now_us, unit)

    def _partial(self, key: StreamKey, state: _StreamState, now_us: int) -> Maker:
        spec, snapshot = self.specs[key.subject], self.book(key.subject).snapshot(int(key.param))
        if self.market is Market.SPOT:
            return lambda unit: partial_depth_payload(spec, snapshot)
        assert state.accumulator is not None
        ids, market = state.accumulator.mark(), self.market
        return lambda unit: futures_partial_depth_payload(market, spec, snapshot, ids, now_us, unit)

    def _klines(self, key: StreamKey, state: _StreamState, now_us: int) -> Iterator[Maker]:
        now_ms, offset = now_us // 1_000, parse_offset(key.tz)
        spec = self._kline_spec(key)
        candles = self.candles[spec.symbol]
        opened, _ = window(key.param, now_ms, offset)
        previous = state.kline_open_ms
        state.kline_open_ms = opened
        if previous is not None and previous != opened:
            # The window rolled over: its final state goes out once more, closed (x = true).
            _, closed_at = window(key.param, previous, offset)
            final = candles.aggregate(previous, closed_at)
            yield self._kline_maker(key, spec, final, closed=True, now_us=now_us)
        current = candles.kline(key.param, now_ms, offset)
        yield self._kline_maker(key, spec, current, closed=False, now_us=now_us)

    def _kline_spec(self, key: StreamKey) -> SymbolSpec:
        if key.kind is _K.CONTINUOUS_KLINE:
            split = split_continuous(key.subject)
            assert split is not None
            return self.by_pair[split[0]][0]
        if key.kind is _K.INDEX_PRICE_KLINE:
            return self.by_pair[key.subject][0]
        return self.specs[key.subject]

    def _kline_maker(
        self, key: StreamKey, spec: SymbolSpec, candle: Candle, *, closed: bool, now_us: int
    ) -> Maker:
        interval, kind = key.param, key.kind
        if kind is _K.KLINE:
            return lambda unit: kline_payload(
                spec, candle, interval, closed=closed, event_time_us=now_us, unit=unit
            )
        if kind is _K.CONTINUOUS_KLINE:
            return lambda unit: continuous_kline_payload(
                spec, candle, interval, closed=closed, event_time_us=now_us
            )
        index = kind is _K.INDEX_PRICE_KLINE
        return lambda unit: price_kline_payload(
            spec, candle, interval, index=index, closed=closed, event_time_us=now_us
        )

    def _mini_ticker(self, symbol: str, now_us: int) -> Maker:
        spec, candles = self.specs[symbol], self.candles[symbol]
        candle = candles.rolling(DAY_MS, now_us // 1_000)
        last, market = candles.last_price, self.market
        return lambda unit: mini_ticker_payload(market, spec, candle, last, now_us, unit)

    def _ticker(self, symbol: str, window_name: str, now_us: int) -> Maker:
        spec, candles, market = self.specs[symbol], self.candles[symbol], self.market
        span = ROLLING_WINDOWS.get(window_name, DAY_MS)
        candle = candles.rolling(span, now_us // 1_000)
        before = candles.price_before(candle.open_time_ms)
        event = f"{window_name}Ticker" if window_name else "24hrTicker"
        book = self.book(symbol)

        def make(unit: TimeUnit) -> Payload:
            inputs = TickerInputs(spec, candle, candles.last_price, before, book, now_us, unit)
            return ticker_payload(market, inputs, event)

        return make

    def _avg_price(self, symbol: str, now_us: int) -> Maker:
        spec, candles = self.specs[symbol], self.candles[symbol]
        candle = candles.rolling(5 * MINUTE_MS, now_us // 1_000)
        last, last_ms = candles.last_price, candles.last_trade_time_ms
        return lambda unit: avg_price_payload(spec, candle, last, last_ms, now_us, unit)

    def mid(self, symbol: str) -> int:
        """The mid price: the simulator's index price."""
        bid, ask = self.book(symbol).top()
        if bid is None or ask is None:
            return self.candles[symbol].last_price
        return (bid[0] + ask[0]) // 2

    def prices(self, symbol: str) -> Prices:
        """Mark, index and estimated settlement prices of a contract."""
        index = self.mid(symbol)
        mark = (index + self.candles[symbol].last_price) // 2
        return Prices(mark=mark, index=index, settle=index)

    def _mark_price(self, symbol: str, now_us: int) -> Callable[[TimeUnit], Payload]:
        spec, prices, market = self.specs[symbol], self.prices(symbol), self.market
        return lambda unit: mark_price_payload(market, spec, prices, now_us, unit)

    def _mark_prices(self, subject: str, now_us: int) -> Iterator[Maker]:
        if subject in self.specs:
            yield self._mark_price(subject, now_us)
        else:  # COIN-M <pair>@markPrice: one array for every contract of the pair
            contracts = [s.symbol for s in self.by_pair[subject] if s.symbol not in self.halted]
            yield from _array([self._mark_price(symbol, now_us) for symbol in contracts])

    def _liquidation(self, symbol: str, now_us: int) -> Maker | None:
        rng = self._liquidations[symbol]
        if rng.random() >= self.liquidation_probability:
            return None
        spec, book = self.specs[symbol], self.book(symbol)
        sells = rng.random() < 0.5  # a long position liquidated sells into the bids
        bid, ask = book.top()
        level = bid if sells else ask
        price = level[0] if level else self.candles[symbol].last_price
        quantity = (1 + int(rng.random() * 20)) * spec.lot_size
        liquidation = Liquidation(
            symbol, "SELL" if sells else "BUY", quantity, price, price, now_us
        )
        market = self.market
        return lambda unit: force_order_payload(market, spec, liquidation, unit)

    def _composite(self, symbol: str, now_us: int) -> Maker:
        spec = self.specs[symbol]
        others = [s for s in self.specs.values() if s.symbol != symbol][:2] or [spec]
        components = [(other, self.mid(other.symbol)) for other in others]
        price = sum(p for _, p in components)
        return lambda unit: composite_index_payload(spec, price, components, now_us, unit)

    def _asset_price(self, asset_symbol: str) -> int:
        asset = asset_symbol.removesuffix("USD")
        if asset in _STABLE_ASSETS:
            return UNITS_PER_WHOLE
        for spec in self.specs.values():
            if spec.base_asset == asset:
                return self.mid(spec.symbol)
        return UNITS_PER_WHOLE

    def _changed(self, state: _StreamState) -> list[str]:
        """Symbols that traded since the stream's previous event ("only changed tickers")."""
        since = state.last_emit_ms
        return [s for s, c in self.candles.items() if c.last_trade_time_ms >= since]


def _assets(spec: SymbolSpec) -> tuple[str, str]:
    return spec.base_asset, spec.quote_asset


def _merge(kind: Kind, own: list[Maker], other: list[Maker]) -> list[Maker]:
    """Both markets' frames of a merged stream: one array where the stream sends arrays."""
    if kind not in _ARRAY_KINDS or not own or not other:
        return own + other
    return [lambda unit: [item for make in (*own, *other) for item in _items(make(unit))]]


def _items(payload: object) -> list[object]:
    return payload if isinstance(payload, list) else [payload]


def _array(makers: list[Maker]) -> Iterator[Maker]:
    """One array frame of the makers' payloads; nothing when there are none."""
    if makers:
        yield _array_of(makers)


def _array_of(makers: Sequence[Maker]) -> Maker:
    return lambda unit: [make(unit) for make in makers]
