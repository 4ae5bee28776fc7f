"""Ground truth: every event the simulator generated, kept compactly and queryable.

Events are stored as the engine's small frozen records in bounded deques (one per symbol and
kind), and turned into payload dicts only when asked, with the same functions that built the
frames, so a query returns exactly what a millisecond connection was sent. Ids are contiguous,
which makes "from id N" lookups an index computation instead of a scan.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice
from typing import TypeVar

from gateway.simulator.engine import AggTrade, Fill, SymbolSpec, Trade
from gateway.simulator.markets import Market
from gateway.simulator.payloads import (
    Payload,
    TimeUnit,
    agg_trade_builder,
    agg_trade_payload,
    futures_trade_payload,
    trade_payload,
)

_Record = TypeVar("_Record", Trade, AggTrade)


class History:
    """The last ``max_per_symbol`` trades and aggregate trades of each symbol."""

    def __init__(
        self,
        symbols: Iterable[str],
        max_per_symbol: int,
        *,
        market: Market = Market.SPOT,
        specs: Iterable[SymbolSpec] = (),
    ) -> None:
        self.market = market
        self._specs = {spec.symbol: spec for spec in specs}
        self._agg_builder = agg_trade_builder(market)
        self._max_per_symbol = max_per_symbol
        self._trades: dict[str, deque[Trade]] = {}
        self._agg_trades: dict[str, deque[AggTrade]] = {}
        for symbol in symbols:
            self.add_symbol(symbol)

    def add_symbol(self, symbol: str, spec: SymbolSpec | None = None) -> None:
        """Keep history for a symbol listed at run time (a no-op for one already kept)."""
        if spec is not None:
            self._specs[spec.symbol] = spec
        if symbol not in self._trades:
            self._trades[symbol] = deque(maxlen=self._max_per_symbol)
            self._agg_trades[symbol] = deque(maxlen=self._max_per_symbol)

    def record(self, fill: Fill) -> None:
        """Remember a fill's trades and aggregate trade."""
        symbol = fill.agg_trade.symbol
        self._trades[symbol].extend(fill.trades)
        self._agg_trades[symbol].append(fill.agg_trade)

    @property
    def symbols(self) -> list[str]:
        """The symbols history is kept for (uppercase)."""
        return list(self._trades)

    def trades(self, symbol: str) -> list[Payload]:
        """The ``<symbol>@trade`` payloads sent, oldest first, as millisecond connections got them
        (futures: the undocumented futures form, docs/binance-streams.md)."""
        return self.trade_payloads(symbol, TimeUnit.MILLISECOND)

    def agg_trades(self, symbol: str) -> list[Payload]:
        """The ``<symbol>@aggTrade`` payloads sent, oldest first (millisecond times)."""
        return self.agg_trade_payloads(symbol, TimeUnit.MILLISECOND)

    def trade_payloads(self, symbol: str, unit: TimeUnit) -> list[Payload]:
        """Like :meth:`trades`, in the given time unit."""
        records = self.trade_records(symbol)
        if self.market is Market.SPOT:
            return [trade_payload(trade, unit) for trade in records]
        spec = self._specs[symbol.upper()]
        return [futures_trade_payload(spec, trade, unit) for trade in records]

    def agg_trade_payloads(self, symbol: str, unit: TimeUnit) -> list[Payload]:
        """Like :meth:`agg_trades`, in the given time unit."""
        spec = self._specs.get(symbol.upper())
        if spec is None:  # a v0 caller without specs: spot payloads need none
            return [agg_trade_payload(agg, unit) for agg in self.agg_trade_records(symbol)]
        return [self._agg_builder(spec, agg, unit) for agg in self.agg_trade_records(symbol)]

    def trades_between(self, symbol: str, first_id: int, last_id: int) -> list[Trade]:
        """The retained trades with ids in ``[first_id, last_id]`` (ground truth for tests)."""
        return self.trades_from(symbol, first_id, max(0, last_id - first_id + 1))

    def agg_trades_between(self, symbol: str, first_id: int, last_id: int) -> list[AggTrade]:
        """The retained aggregate trades with ids in ``[first_id, last_id]``."""
        return self.agg_trades_from(symbol, first_id, max(0, last_id - first_id + 1))

    def trade_records(self, symbol: str) -> list[Trade]:
        """The retained trades of ``symbol`` (any case), oldest first.

        Raises:
            KeyError: the symbol is not simulated.
        """
        return list(self._trades[symbol.upper()])

    def agg_trade_records(self, symbol: str) -> list[AggTrade]:
        """The retained aggregate trades of ``symbol`` (any case), oldest first."""
        return list(self._agg_trades[symbol.upper()])

    def trades_from(self, symbol: str, from_id: int | None, limit: int) -> list[Trade]:
        """Up to ``limit`` trades with id >= ``from_id``; the latest ``limit`` when ``None``."""
        records = self._trades[symbol.upper()]
        return _slice_by_id(records, from_id, limit, lambda trade: trade.trade_id)

    def agg_trades_from(self, symbol: str, from_id: int | None, limit: int) -> list[AggTrade]:
        """Up to ``limit`` aggregate trades with id >= ``from_id``; the latest when ``None``."""
        records = self._agg_trades[symbol.upper()]
        return _slice_by_id(records, from_id, limit, lambda agg: agg.agg_trade_id)


def _slice_by_id(
    records: deque[_Record], from_id: int | None, limit: int, id_of: Callable[[_Record], int]
) -> list[_Record]:
    if not records:
        return []
    if from_id is None:
        start = max(0, len(records) - limit)
    else:
        # Ids are contiguous in a deque, so the position is an offset from the oldest id.
        start = min(len(records), max(0, from_id - id_of(records[0])))
    return list(islice(records, start, start + limit))
