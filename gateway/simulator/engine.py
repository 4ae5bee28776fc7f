"""The market engine: a pure, seeded generator of trades and aggregate trades.

No I/O, no clock of its own: the caller passes the current time in, so a given seed and a given
sequence of clock values always produce the same events. Prices and quantities are integers in
units of ``10**-8`` (Binance spot shows 8 decimals); only :mod:`gateway.simulator.payloads` turns
them into strings.

One call to :meth:`MarketEngine.next_fill` models one taker order that fills against resting
orders at a single price: it yields ``k`` consecutive trades (contiguous trade ids) and the one
aggregate trade that covers them (``first_trade_id..last_trade_id``), as Binance aggregates "per
single taker order" at one price.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Clock = Callable[[], int]
"""Returns the current time in epoch microseconds; injected so tests control event times."""

UNITS_PER_WHOLE = 10**8
"""Prices and quantities are integers of ``1e-8``: Binance spot's 8 decimals."""

DEFAULT_MAX_TRADES_PER_FILL = 4

# Well-known symbols start near a plausible price; the rest get a seeded one.
_KNOWN_PRICES = {"BTCUSDT": 60_000, "ETHUSDT": 3_000, "BNBUSDT": 600, "SOLUSDT": 150}
_KNOWN_QUOTES = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "TRY")
# A lot is worth about this many quote units, whatever the price.
_LOT_NOTIONAL = 10
# Ids of different symbols live in different ranges, and trade ids never overlap agg ids, so a
# consumer that mixes them up cannot pass a comparison by accident.
_TRADE_ID_STRIDE = 100_000_000
_AGG_ID_STRIDE = 1_000_000


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


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade, as the ``<symbol>@trade`` stream reports it."""

    symbol: str
    trade_id: int
    price: int
    quantity: int
    trade_time_us: int
    event_time_us: int
    buyer_is_maker: bool


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class Fill:
    """The result of one taker order: its trades and the aggregate trade covering them."""

    trades: tuple[Trade, ...]
    agg_trade: AggTrade


def split_symbol(symbol: str) -> tuple[str, str]:
    """Return ``(base, quote)`` for a symbol, guessing the quote from common quote assets."""
    for quote in _KNOWN_QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-3], symbol[-3:]


def default_symbol_specs(symbols: Iterable[str], seed: int) -> list[SymbolSpec]:
    """Build a spec per symbol: plausible prices, ticks and lots, disjoint id ranges."""
    specs = []
    for index, symbol in enumerate(symbols):
        rng = random.Random(f"{seed}:{symbol}:spec")
        whole_price = _KNOWN_PRICES.get(symbol) or rng.randint(1, 1_000)
        price = whole_price * UNITS_PER_WHOLE
        base, quote = split_symbol(symbol)
        specs.append(
            SymbolSpec(
                symbol=symbol,
                base_asset=base,
                quote_asset=quote,
                initial_price=price,
                tick_size=_power_of_ten_below(price // 1_000_000),
                lot_size=_power_of_ten_below(_LOT_NOTIONAL * UNITS_PER_WHOLE // whole_price),
                first_trade_id=(index + 1) * _TRADE_ID_STRIDE,
                first_agg_trade_id=(index + 1) * _AGG_ID_STRIDE,
            )
        )
    return specs


def _power_of_ten_below(units: int) -> int:
    """The largest power of ten <= ``units`` (at least 1 unit)."""
    power = 1
    while power * 10 <= units:
        power *= 10
    return power


class _SymbolMarket:
    """One symbol's mutable state: price, next ids and its own random stream."""

    def __init__(self, spec: SymbolSpec, seed: int) -> None:
        self.spec = spec
        # One generator per symbol: a symbol's events do not depend on how calls interleave.
        self._rng = random.Random(f"{seed}:{spec.symbol}")
        self._price = spec.initial_price
        self._next_trade_id = spec.first_trade_id
        self._next_agg_id = spec.first_agg_trade_id
        self._last_time_us = 0

    def next_fill(self, now_us: int, max_trades: int, max_trades_per_fill: int) -> Fill:
        draw = self._rng.random
        # Draw everything before applying the cap, so a cap never shifts the random sequence.
        # int(draw() * n) rather than randint(): the same determinism at half the cost.
        drawn_count = 1 + int(draw() * max_trades_per_fill)
        step = int(draw() * 5) - 2
        self._price = max(self.spec.tick_size, self._price + step * self.spec.tick_size)
        buyer_is_maker = draw() < 0.5
        lot = self.spec.lot_size
        quantities = [(1 + int(draw() * 1_000)) * lot for _ in range(drawn_count)]
        latency_us = int(draw() * 1_500)
        # Trade time never goes backwards for a symbol, even if the injected clock does.
        trade_time_us = self._last_time_us = max(now_us, self._last_time_us)
        event_time_us = trade_time_us + latency_us

        first_id = self._next_trade_id
        trades = tuple(
            Trade(
                symbol=self.spec.symbol,
                trade_id=first_id + offset,
                price=self._price,
                quantity=quantity,
                trade_time_us=trade_time_us,
                event_time_us=event_time_us,
                buyer_is_maker=buyer_is_maker,
            )
            for offset, quantity in enumerate(quantities[: max(1, min(drawn_count, max_trades))])
        )
        self._next_trade_id += len(trades)
        agg = AggTrade(
            symbol=self.spec.symbol,
            agg_trade_id=self._next_agg_id,
            price=self._price,
            quantity=sum(trade.quantity for trade in trades),
            first_trade_id=first_id,
            last_trade_id=trades[-1].trade_id,
            trade_time_us=trade_time_us,
            event_time_us=event_time_us,
            buyer_is_maker=buyer_is_maker,
        )
        self._next_agg_id += 1
        return Fill(trades=trades, agg_trade=agg)


class MarketEngine:
    """Deterministic trades for a set of symbols.

    Args:
        specs: one spec per symbol.
        seed: the same seed and the same ``now_us`` values give the same events.
        max_trades_per_fill: a fill holds 1..this many trades (uniformly drawn).
    """

    def __init__(
        self,
        specs: Sequence[SymbolSpec],
        seed: int,
        *,
        max_trades_per_fill: int = DEFAULT_MAX_TRADES_PER_FILL,
    ) -> None:
        if max_trades_per_fill < 1:
            raise ValueError("max_trades_per_fill must be at least 1")
        self._markets = {spec.symbol: _SymbolMarket(spec, seed) for spec in specs}
        self._max_trades_per_fill = max_trades_per_fill

    @property
    def specs(self) -> list[SymbolSpec]:
        """The symbols' specs, in configuration order."""
        return [market.spec for market in self._markets.values()]

    def next_fill(self, symbol: str, now_us: int, *, max_trades: int | None = None) -> Fill:
        """Generate the next taker order's fill for ``symbol`` at time ``now_us``.

        ``max_trades`` caps the number of trades (at least one is always generated), so a
        caller can stop at an exact trade count.
        """
        cap = self._max_trades_per_fill if max_trades is None else max_trades
        return self._markets[symbol].next_fill(now_us, cap, self._max_trades_per_fill)
