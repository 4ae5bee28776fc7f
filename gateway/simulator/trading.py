"""The trading loop: when the market trades, how much, and where its real-time events go.

It asks the pure :class:`~gateway.simulator.market.SimulatedMarket` for fills, records them in
the history and publishes the real-time streams (trades, aggregate trades, book tickers, spot
block trades) to the hub; the periodic streams are :mod:`gateway.simulator.periodic`'s job.
Two paces: a fixed rate per symbol (trades per second), or as fast as the subscribers read (rate
``None`` or 0), where :meth:`Hub.drain` after each burst is the only brake. A budget per symbol
lets a test ask for exactly N trades and then wait until the loop is idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial

from gateway.simulator.engine import AggTrade, Clock, Fill, Trade
from gateway.simulator.history import History
from gateway.simulator.hub import Hub, PayloadBuilder
from gateway.simulator.market import SimulatedMarket
from gateway.simulator.markets import Market
from gateway.simulator.merger import stamped_builder
from gateway.simulator.payloads import agg_trade_builder, futures_trade_payload, trade_payload
from gateway.simulator.render_market import block_trade_payload
from gateway.simulator.streams import Channel, stream_name

logger = logging.getLogger(__name__)

FILLS_PER_DRAIN = 64
"""Fills generated between two drains (rounded up to a whole round of symbols): enough to
amortise the await, few enough that queued frames stay small and pings stay punctual."""
MAX_OWED_TRADES = 1_000
"""A paced symbol that fell behind (a slow reader held the loop) catches up at most this much."""


class TradingLoop:
    """Turns the engine's fills into published events at the configured pace."""

    def __init__(
        self,
        market: SimulatedMarket,
        history: History,
        hub: Hub,
        *,
        clock_us: Clock,
        trades_per_second: float | None,
        max_trades_per_symbol: int | None,
        paused: bool,
    ) -> None:
        self._market = market
        self._history = history
        self._hub = hub
        self._clock_us = clock_us
        self._rate = trades_per_second or None
        self._spot = market.market is Market.SPOT
        self._symbols: list[str] = []
        self._streams: dict[str, tuple[str, str, str, str]] = {}
        self._builder = agg_trade_builder(market.market)
        if market.merged:
            self._builder = stamped_builder(self._builder, market.market)
        self._agg_builders: dict[str, PayloadBuilder[AggTrade]] = {}
        self._trade_builders: dict[str, PayloadBuilder[Trade]] = {}
        # COIN-M's !bookTicker is real-time; USDⓈ-M's comes every 5 s (periodic).
        self._all_book_ticker = market.market is Market.COINM
        self._withheld: dict[str, int] = {}
        self._budget: dict[str, int | None] = {}
        self._total: dict[str, int] = {}
        self._paced: dict[str, int] = {}
        for symbol in market.specs:
            self._track(symbol, max_trades_per_symbol)
        self._paused = paused
        self._pace_start = 0.0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        hub.add_change_listener(self._wake.set)  # a first subscriber can be work

    def _track(self, symbol: str, budget: int | None) -> None:
        self._symbols.append(symbol)
        self._streams[symbol] = (
            stream_name(symbol, Channel.TRADE),
            stream_name(symbol, Channel.AGG_TRADE),
            stream_name(symbol, "bookTicker"),
            stream_name(symbol, "blockTrade"),
        )
        spec = self._market.specs[symbol]
        self._agg_builders[symbol] = partial(self._builder, spec)
        self._trade_builders[symbol] = (
            trade_payload if self._spot else partial(futures_trade_payload, spec)
        )
        self._withheld[symbol] = self._total[symbol] = self._paced[symbol] = 0
        self._budget[symbol] = budget

    def listed(self, symbol: str) -> None:
        """The market listed ``symbol`` (or listed it again): trade it from now on.

        A new symbol trades endlessly when the others do; when they trade within budgets
        (``run_for``), it waits for the next ``run_for`` like them. Either way it is not owed
        trades for the time before its listing.
        """
        if symbol not in self._budget:
            endless = all(left is None for left in self._budget.values())
            self._track(symbol, None if endless else 0)
        if self._rate is not None and self._pace_start:
            elapsed = asyncio.get_running_loop().time() - self._pace_start
            self._paced[symbol] = int(elapsed * self._rate)
        self._wake.set()

    def pause(self) -> None:
        """Stop trading after the current burst."""
        self._paused = True
        self._wake.set()

    def resume(self) -> None:
        """Trade again (within the remaining budget, if any)."""
        self._paused = False
        if self._has_work():
            self._idle.clear()
        self._wake.set()

    def run_for(self, trades_per_symbol: int) -> None:
        """Trade exactly ``trades_per_symbol`` more trades per symbol, then go idle."""
        for symbol, remaining in self._budget.items():
            if symbol not in self._market.halted:
                self._budget[symbol] = (remaining or 0) + trades_per_symbol
        self.resume()

    def withhold(self, symbol: str, fills: int) -> None:
        """Gap fault: the next ``fills`` fills of ``symbol`` are recorded but never streamed."""
        self._withheld[symbol.upper()] += fills

    def trades_generated(self, symbol: str) -> int:
        """How many trades ``symbol`` has had since start."""
        return self._total[symbol.upper()]

    @property
    def is_idle(self) -> bool:
        """Whether the loop waits: paused, out of budget, or (endless and unpaced) unread."""
        return self._idle.is_set()

    async def wait_idle(self) -> None:
        """Wait until the loop has nothing to do (see :attr:`is_idle`)."""
        await self._idle.wait()

    async def run(self) -> None:
        """Trade until cancelled."""
        self._restart_pacing()
        while True:
            if not self._has_work():
                await self._sleep_until_work()
            elif self._rate is None:
                await self._burst()
            else:
                await self._paced_step(self._rate)

    def _has_work(self) -> bool:
        if self._paused:
            return False
        halted = self._market.halted
        budgets = [left for s, left in self._budget.items() if s not in halted]
        if any(left is not None and left > 0 for left in budgets):
            return True
        if not any(left is None for left in budgets):
            return False  # every budget is spent (or every symbol delisted)
        # Nobody paces an endless fast market: without a reader it would burn a core on events
        # nobody reads (say, while a benchmark's gateway is still starting), so it waits.
        return self._rate is not None or self._hub.subscription_count > 0

    async def _sleep_until_work(self) -> None:
        self._idle.set()
        logger.debug("trading idle")
        while not self._has_work():
            self._wake.clear()
            await self._wake.wait()
        self._idle.clear()
        self._restart_pacing()

    def _restart_pacing(self) -> None:
        """Count the paced rate from now: time spent idle is not owed trades."""
        self._pace_start = asyncio.get_running_loop().time()
        self._paced = dict.fromkeys(self._symbols, 0)

    async def _burst(self) -> None:
        fills = 0
        while fills < FILLS_PER_DRAIN:
            round_fills = sum(self._trade(symbol) for symbol in self._symbols)
            if not round_fills:
                break
            fills += round_fills
        await self._hub.drain()
        # drain() returns at once when no buffer is full; let the loop serve sockets anyway.
        await asyncio.sleep(0)

    async def _paced_step(self, rate: float) -> None:
        loop = asyncio.get_running_loop()
        due = int((loop.time() - self._pace_start) * rate) + 1
        fills = 0
        for symbol in self._symbols:
            self._paced[symbol] = max(self._paced[symbol], due - MAX_OWED_TRADES)
            while self._paced[symbol] < due and not self._paused and self._trade(symbol):
                fills += 1
                if fills % FILLS_PER_DRAIN == 0:
                    await self._hub.drain()
        await self._hub.drain()
        halted = self._market.halted
        active = [
            self._paced[s]
            for s, left in self._budget.items()
            if (left is None or left > 0) and s not in halted
        ]
        next_due = self._pace_start + min(active, default=0) / rate
        await self._sleep_or_wake(next_due - loop.time())

    async def _sleep_or_wake(self, delay_s: float) -> None:
        """Sleep ``delay_s`` seconds, or less if paused or given more work meanwhile."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, delay_s)):
                await self._wake.wait()

    def _trade(self, symbol: str) -> bool:
        """Generate and publish one fill for ``symbol``; ``False`` if its budget is spent."""
        budget = self._budget[symbol]
        if budget == 0 or symbol in self._market.halted:
            return False
        fill = self._market.step(symbol, self._clock_us(), max_trades=budget)
        self._history.record(fill)
        if self._withheld[symbol]:
            self._withheld[symbol] -= 1
        else:
            self._publish(symbol, fill)
        count = len(fill.trades)
        self._total[symbol] += count
        self._paced[symbol] += count
        if budget is not None:
            self._budget[symbol] = budget - count
        return True

    def _publish(self, symbol: str, fill: Fill) -> None:
        trade_stream, agg_stream, book_stream, block_stream = self._streams[symbol]
        hub = self._hub
        if hub.has_subscribers(trade_stream):
            for trade in fill.trades:
                hub.publish(trade_stream, trade, self._trade_builders[symbol])
        hub.publish(agg_stream, fill.agg_trade, self._agg_builders[symbol])
        if hub.has_subscribers(book_stream):
            hub.publish_lazy(
                book_stream, self._market.book_ticker(symbol, fill.agg_trade.event_time_us)
            )
        if self._all_book_ticker and hub.has_subscribers("!bookTicker"):
            hub.publish_lazy(
                "!bookTicker", self._market.book_ticker(symbol, fill.agg_trade.event_time_us)
            )
            other, stepped = self._market.other_market, self._market.other_stepped
            if other is not None and stepped is not None:  # merged: both markets' contracts
                hub.publish_lazy(
                    "!bookTicker", other.book_ticker(stepped, fill.agg_trade.event_time_us)
                )
        if self._spot and (block := self._market.block_trade(fill)) is not None:
            spec = self._market.specs[symbol]
            hub.publish(block_stream, block, partial(block_trade_payload, spec))
