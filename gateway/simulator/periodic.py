"""The periodic streams: depth, klines, tickers, mark prices... published on their cadence.

Every stream that somebody listens to and that Binance pushes on a timer (docs/binance.md §3, §4: depth
every 100/250/500/1000 ms, klines every 250 ms or 2 s, tickers every 1-2 s, mark prices every
1 or 3 s...) gets its next due time; when it is due, the market renders what it says now and
the hub sends it to every subscriber at once, as Binance's stream servers do. The first event
comes one period after the first subscription. ``update_interval_scale`` shrinks every period
for tests; event times still come from the clock.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.simulator.engine import Clock
from gateway.simulator.hub import Hub
from gateway.simulator.market import SimulatedMarket
from gateway.simulator.markets import Market
from gateway.simulator.streams import Kind, StreamCatalog, StreamKey

logger = logging.getLogger(__name__)

_REAL_TIME = frozenset({Kind.TRADE, Kind.AGG_TRADE, Kind.BOOK_TICKER, Kind.BLOCK_TRADE})


class PeriodicPublisher:
    """Publishes every subscribed periodic stream when it is due."""

    def __init__(
        self,
        market: SimulatedMarket,
        catalog: StreamCatalog,
        hub: Hub,
        *,
        clock_us: Clock,
        scale: float,
    ) -> None:
        self._market = market
        self._catalog = catalog
        self._hub = hub
        self._clock_us = clock_us
        self._scale = scale
        self._due: dict[str, tuple[StreamKey, float]] = {}
        self._not_periodic: set[str] = set()
        # Fine enough for the fastest stream (100 ms, scaled), never a busy loop.
        self._tick_s = max(0.001, min(0.05, 0.05 * scale))

    def is_periodic(self, key: StreamKey) -> bool:
        """Whether ``key`` is published on a timer (rather than with each trade)."""
        if key.kind is Kind.ALL_BOOK_TICKER:
            return self._market.market is Market.USDM
        return key.kind not in _REAL_TIME

    async def run(self) -> None:
        """Publish until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._tick_s)
            if self.publish_due(loop.time()):
                await self._hub.drain()

    def publish_due(self, now_s: float) -> int:
        """Publish every stream due at monotonic ``now_s``; return how many frames went out."""
        live = self._hub.stream_names()
        self._forget_unsubscribed(set(live))
        frames = 0
        for name in live:
            if name in self._not_periodic:
                continue
            entry = self._due.get(name)
            if entry is None:
                self._track(name, now_s)
                continue
            key, due = entry
            if now_s < due or key.subject in self._market.halted:
                continue  # a delisted symbol's streams are silent
            for make in self._market.render(name, key, self._clock_us()):
                self._hub.publish_lazy(name, make)
                frames += 1
            period = self._period_s(key)
            # Catch up at most one period: a stalled loop does not burst old events.
            self._due[name] = (key, max(due + period, now_s + period / 2))
        return frames

    def _track(self, name: str, now_s: float) -> None:
        key = self._catalog.key(name)
        if key is None or not self.is_periodic(key):
            self._not_periodic.add(name)
            return
        self._market.start(name, key)
        self._due[name] = (key, now_s + self._period_s(key))

    def _forget_unsubscribed(self, live: set[str]) -> None:
        for name in [name for name in self._due if name not in live]:
            key, _ = self._due.pop(name)
            self._market.stop(name, key)

    def _period_s(self, key: StreamKey) -> float:
        return self._market.period_ms(key) / 1_000 * self._scale
