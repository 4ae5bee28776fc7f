"""The market engine: a pure, seeded generator of order-book changes, trades and aggregate trades.

No I/O, no clock of its own: the caller passes the current time in, so a given seed and a given
sequence of clock values always produce the same events. Prices and quantities are integers in
units of ``10**-8``; only the payload modules turn them into strings.

Each symbol has an :class:`~gateway.simulator.book.OrderBook`. One call to
:meth:`MarketEngine.next_fill` models one step of the market: a maker adds or cancels liquidity,
then one taker order fills against the best level of one side. The taker's ``k`` trades are
consecutive (contiguous trade ids) at that one price and make one aggregate trade, as Binance
aggregates "per single taker order" at one price; the level they consumed shrinks or disappears.
Every level change gets a book update id: consecutive on spot, with gaps on futures (whose ids
jump between events; clients must chain them with ``pu``, docs/binance.md §5.2).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from gateway.simulator.book import LevelChange, OrderBook
from gateway.simulator.markets import Market

Clock = Callable[[], int]
"""Returns the current time in epoch microseconds; injected so tests control event times."""

UNITS_PER_WHOLE = 10**8
"""Prices and quantities are integers of ``1e-8``: Binance spot's 8 decimals."""

DEFAULT_MAX_TRADES_PER_FILL = 4

# Well-known symbols start near a plausible price; the rest get a seeded one.
_KNOWN_PRICES = {"BTC": 60_000, "ETH": 3_000, "BNB": 600, "SOL": 150}
_KNOWN_QUOTES = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "USD")
# A lot is worth about this many quote units, whatever the price.
_LOT_NOTIONAL = 10
# Ids of different symbols live in different ranges, and trade ids never overlap agg ids, so a
# consumer that mixes them up cannot pass a comparison by accident.
_TRADE_ID_STRIDE = 100_000_000
_AGG_ID_STRIDE = 1_000_000
_UPDATE_ID_STRIDE = 10_000_000_000
_INITIAL_LEVELS = 20
_MIN_LEVELS = 5
_MAX_LEVELS = 60
_COINM_CONTRACT_USD = 100  # COIN-M quantities are contracts of 100 USD (10 for altcoins)


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """What the engine needs to know about one symbol (uppercase, as in payloads)."""

    symbol: str
    base_asset: str
    quote_asset: str
    initial_price: int
    tick_size: int
    lot_size: int
    first_trade_id: int
    first_agg_trade_id: int
    first_update_id: int = 1
    pair: str = ""
    """Futures: the pair (``BTCUSDT``, COIN-M ``BTCUSD``); spot: the symbol."""
    contract_type: str = ""
    """Futures: ``PERPETUAL``; spot: empty."""
    price_decimals: int = 8
    qty_decimals: int = 8


@dataclass(slots=True)  # not frozen: 4x cheaper to build on the hot path; never mutated
class Trade:
    """One trade, as the ``<symbol>@trade`` stream reports it."""

    symbol: str
    trade_id: int
    price: int
    quantity: int
    trade_time_us: int
    event_time_us: int
    buyer_is_maker: bool


@dataclass(slots=True)  # not frozen: 4x cheaper to build on the hot path; never mutated
class AggTrade:
    """One aggregate trade: consecutive trades of one taker order at one price."""

    symbol: str
    agg_trade_id: int
    price: int
    quantity: int
    first_trade_id: int
    last_trade_id: int
    trade_time_us: int
    event_time_us: int
    buyer_is_maker: bool


@dataclass(slots=True)  # not frozen: 4x cheaper to build on the hot path; never mutated
class Fill:
    """One market step: its trades, the aggregate trade covering them, and the book changes."""

    trades: tuple[Trade, ...]
    agg_trade: AggTrade
    book_changes: tuple[LevelChange, ...] = ()


def split_symbol(symbol: str) -> tuple[str, str]:
    """Return ``(base, quote)`` for a symbol, guessing the quote from common quote assets."""
    pair = symbol.split("_", 1)[0]
    for quote in _KNOWN_QUOTES:
        if pair.endswith(quote) and len(pair) > len(quote):
            return pair[: -len(quote)], quote
    return pair[:-3], pair[-3:]


def default_symbol_specs(
    symbols: Iterable[str], seed: int, market: Market = Market.SPOT
) -> list[SymbolSpec]:
    """Build a spec per symbol: plausible prices, ticks and lots, disjoint id ranges."""
    return [symbol_spec(symbol, index, seed, market) for index, symbol in enumerate(symbols)]


def symbol_spec(symbol: str, index: int, seed: int, market: Market = Market.SPOT) -> SymbolSpec:
    """The spec of the ``index``-th symbol of a market (its id ranges follow from ``index``),
    also for a symbol listed at run time, which takes the next free index."""
    rng = random.Random(f"{seed}:{symbol}:spec")
    base, quote = split_symbol(symbol)
    whole_price = _KNOWN_PRICES.get(base) or rng.randint(1, 1_000)
    price = whole_price * UNITS_PER_WHOLE
    tick = _power_of_ten_below(price // 1_000_000)
    if market is Market.COINM:
        lot = UNITS_PER_WHOLE  # one contract
    else:
        lot = _power_of_ten_below(_LOT_NOTIONAL * UNITS_PER_WHOLE // whole_price)
    return SymbolSpec(
        symbol=symbol,
        base_asset=base,
        quote_asset=quote,
        initial_price=price,
        tick_size=tick,
        lot_size=lot,
        first_trade_id=(index + 1) * _TRADE_ID_STRIDE,
        first_agg_trade_id=(index + 1) * _AGG_ID_STRIDE,
        first_update_id=(index + 1) * _UPDATE_ID_STRIDE,
        pair=symbol.split("_", 1)[0],
        contract_type="" if market is Market.SPOT else "PERPETUAL",
        price_decimals=8 if market is Market.SPOT else _decimals(tick),
        qty_decimals=8 if market is Market.SPOT else _decimals(lot),
    )


def _power_of_ten_below(units: int) -> int:
    """The largest power of ten <= ``units`` (at least 1 unit)."""
    power = 1
    while power * 10 <= units:
        power *= 10
    return power


def _decimals(step_units: int) -> int:
    """How many decimals a step of ``step_units`` (a power of ten) needs: 1e6 units -> 2."""
    decimals = 8
    while decimals > 0 and step_units % 10 == 0:
        step_units //= 10
        decimals -= 1
    return decimals


class _SymbolMarket:
    """One symbol's mutable state: its book, next ids and its own random stream."""

    def __init__(self, spec: SymbolSpec, seed: int, *, futures: bool) -> None:
        self.spec = spec
        # One generator per symbol: a symbol's events do not depend on how calls interleave.
        self._rng = random.Random(f"{seed}:{spec.symbol}")
        self._futures = futures
        self._next_trade_id = spec.first_trade_id
        self._next_agg_id = spec.first_agg_trade_id
        self._last_time_us = 0
        self._changes = 0
        self.book = OrderBook(spec.first_update_id)
        self._seed_book()

    def _seed_book(self) -> None:
        tick, lot, draw = self.spec.tick_size, self.spec.lot_size, self._rng.random
        for rank in range(1, _INITIAL_LEVELS + 1):
            for is_bid in (True, False):
                price = self.spec.initial_price + (-rank if is_bid else rank) * tick
                self.book.side(is_bid).set(max(tick, price), (1 + int(draw() * 500)) * lot)

    def _change(self, changes: list[LevelChange], is_bid: bool, price: int, qty: int) -> None:
        # Futures ids jump between changes (other books' and RPI updates share the sequence).
        self._changes += 1
        step = 1 + self._changes % 3 if self._futures else 1
        change = LevelChange(self.book.last_update_id + step, is_bid, price, qty)
        self.book.apply(change)
        changes.append(change)

    def _maker(self, draw: Callable[[], float], changes: list[LevelChange]) -> None:
        """One maker action: add liquidity near the touch, or cancel some; keep the book sane."""
        book, tick, lot = self.book, self.spec.tick_size, self.spec.lot_size
        is_bid = draw() < 0.5
        side, other = book.side(is_bid), book.side(not is_bid)
        if len(side) < _MIN_LEVELS or draw() < 0.7:
            offset = int(draw() * 8) - 1  # -1 improves the touch by a tick
            best, opposite = side.best(), other.best()
            reference = best if best is not None else opposite
            assert reference is not None  # the book is seeded with both sides
            price = reference - offset * tick if is_bid else reference + offset * tick
            if opposite is not None:  # never cross the book
                price = min(price, opposite - tick) if is_bid else max(price, opposite + tick)
            price = max(tick, price)
            added = (1 + int(draw() * 500)) * lot
            self._change(changes, is_bid, price, side.quantities.get(price, 0) + added)
        else:
            price = side.at(int(draw() * min(10, len(side))))
            self._change(changes, is_bid, price, side.quantities[price] // 2 // lot * lot)
        if len(side) > _MAX_LEVELS:
            worst = side.worst()
            assert worst is not None
            self._change(changes, is_bid, worst, 0)

    def next_fill(self, now_us: int, max_trades: int, max_trades_per_fill: int) -> Fill:
        draw = self._rng.random
        changes: list[LevelChange] = []
        self._maker(draw, changes)
        # Draw everything before applying the cap, so a cap never shifts the random sequence.
        # int(draw() * n) rather than randint(): the same determinism at half the cost.
        buyer_is_maker = draw() < 0.5  # the taker sells into the best bid
        drawn_count = 1 + int(draw() * max_trades_per_fill)
        lot = self.spec.lot_size
        quantities = [(1 + int(draw() * 100)) * lot for _ in range(drawn_count)]
        latency_us = int(draw() * 1_500)
        side = self.book.side(buyer_is_maker)
        if len(side) == 0:  # a taker emptied it: a maker steps in at once
            self._change(changes, buyer_is_maker, self._refill_price(buyer_is_maker), 100 * lot)
        price = side.best()
        assert price is not None
        available = side.quantities[price]
        # Trade time never goes backwards for a symbol, even if the injected clock does.
        trade_time_us = self._last_time_us = max(now_us, self._last_time_us)
        event_time_us = trade_time_us + latency_us

        first_id = self._next_trade_id
        trades: list[Trade] = []
        for quantity in quantities[: max(1, min(drawn_count, max_trades))]:
            filled = min(quantity, available)
            available -= filled
            trades.append(
                Trade(
                    symbol=self.spec.symbol,
                    trade_id=first_id + len(trades),
                    price=price,
                    quantity=filled,
                    trade_time_us=trade_time_us,
                    event_time_us=event_time_us,
                    buyer_is_maker=buyer_is_maker,
                )
            )
            if not available:
                break  # the level is gone; the order's rest would trade at another price
        self._change(changes, buyer_is_maker, price, available)
        self._next_trade_id += len(trades)
        agg = AggTrade(
            symbol=self.spec.symbol,
            agg_trade_id=self._next_agg_id,
            price=price,
            quantity=sum(trade.quantity for trade in trades),
            first_trade_id=first_id,
            last_trade_id=trades[-1].trade_id,
            trade_time_us=trade_time_us,
            event_time_us=event_time_us,
            buyer_is_maker=buyer_is_maker,
        )
        self._next_agg_id += 1
        return Fill(trades=tuple(trades), agg_trade=agg, book_changes=tuple(changes))

    def _refill_price(self, is_bid: bool) -> int:
        opposite = self.book.side(not is_bid).best()
        base = self.spec.initial_price if opposite is None else opposite
        return max(self.spec.tick_size, base + (-1 if is_bid else 1) * self.spec.tick_size)


class MarketEngine:
    """Deterministic books and trades for a set of symbols.

    Args:
        specs: one spec per symbol.
        seed: the same seed and the same ``now_us`` values give the same events.
        max_trades_per_fill: a fill holds 1..this many trades (uniformly drawn).
        market: futures markets number book updates with gaps (see the module docstring).
    """

    def __init__(
        self,
        specs: Sequence[SymbolSpec],
        seed: int,
        *,
        max_trades_per_fill: int = DEFAULT_MAX_TRADES_PER_FILL,
        market: Market = Market.SPOT,
    ) -> None:
        if max_trades_per_fill < 1:
            raise ValueError("max_trades_per_fill must be at least 1")
        self._seed = seed
        self._futures = market.is_futures
        self._markets: dict[str, _SymbolMarket] = {}
        self._max_trades_per_fill = max_trades_per_fill
        for spec in specs:
            self.add(spec)

    def add(self, spec: SymbolSpec) -> None:
        """Start simulating one more symbol (a listing); its book is seeded like the others."""
        if spec.symbol in self._markets:
            raise ValueError(f"{spec.symbol} is already simulated")
        self._markets[spec.symbol] = _SymbolMarket(spec, self._seed, futures=self._futures)

    @property
    def specs(self) -> list[SymbolSpec]:
        """The symbols' specs, in configuration order."""
        return [market.spec for market in self._markets.values()]

    def book(self, symbol: str) -> OrderBook:
        """The live book of ``symbol`` (read it, don't change it)."""
        return self._markets[symbol].book

    def next_fill(self, symbol: str, now_us: int, *, max_trades: int | None = None) -> Fill:
        """Generate the next market step's fill for ``symbol`` at time ``now_us``.

        ``max_trades`` caps the number of trades (at least one is always generated), so a
        caller can stop at an exact trade count.
        """
        cap = self._max_trades_per_fill if max_trades is None else max_trades
        return self._markets[symbol].next_fill(now_us, cap, self._max_trades_per_fill)
