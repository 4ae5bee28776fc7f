"""One shard at run time: its WebSocket connections, each supervised, following plan changes.

A shard's streams usually fit one connection; USDⓈ-M streams split by route, and an oversized
shard (see ``gateway plan``) takes several. Each connection is a supervised task: the client
reconnects on its own after network trouble; what it cannot absorb ends it, and the supervisor
restarts it on a :class:`~gateway.coordination.supervision.RestartPolicy` schedule and reports a
shard that keeps failing. A failure of the Kafka sink is never retried here: records would be
lost, so it ends the worker (and Kubernetes restarts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.adapters.binance_ws import BinanceStreamClient
from gateway.binance.markets import Market
from gateway.binance.merger import left_to_other_market
from gateway.binance.messages import FrameParser
from gateway.binance.policy import SlidingWindowLimit
from gateway.binance.streams import chunk, combined_path
from gateway.books import BookKeeper
from gateway.continuity import TradeContinuity
from gateway.coordination.plan import Shard, streams_by_route
from gateway.coordination.supervision import RestartPolicy, restarts
from gateway.metrics import Metrics
from gateway.pipeline import FramePipeline
from gateway.records.builder import RecordBuilder
from gateway.records.topics import RecordSink
from gateway.settings import BinanceSettings, CoordinationSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MarketKeepers:
    """The per-market state every connection of that market shares."""

    continuity: TradeContinuity | None
    books: BookKeeper | None

    def forget(self, symbols: tuple[str, ...]) -> None:
        if self.continuity is not None:
            self.continuity.forget(symbols)
        if self.books is not None:
            self.books.forget(symbols)

    async def retire(self, symbols: tuple[str, ...]) -> None:
        """Symbols that left the plan (delisted): publish their last trades, then forget them."""
        if self.continuity is not None:
            await self.continuity.catch_up(symbols)
        self.forget(symbols)

    async def stop(self) -> None:
        for keeper in (self.continuity, self.books):
            if keeper is not None:
                await keeper.stop()


@dataclass(frozen=True, slots=True)
class ShardContext:
    """What every shard of a worker shares."""

    binance: BinanceSettings
    coordination: CoordinationSettings
    builder: RecordBuilder
    sink: RecordSink
    metrics: Metrics
    keepers: Mapping[Market, MarketKeepers]
    attempts: SlidingWindowLimit
    """Connection attempts of the whole process: Binance counts them per IP."""


def connection_urls(shard: Shard, binance: BinanceSettings) -> dict[str, str]:
    """Connection name → URL for the shard's streams (none for an empty shard)."""
    market_settings = binance.markets[shard.market]
    by_route = streams_by_route(shard.market, shard.streams, market_settings.routes)
    urls = {}
    for route, names in sorted(by_route.items()):
        for index, group in enumerate(chunk(names, market_settings.max_streams_per_connection)):
            name = f"{shard.id}{route.replace('/', '-')}-{index}"
            path = combined_path(group, market_settings.time_unit)
            urls[name] = binance.stream_url(shard.market) + route + path
    return urls


class ShardRunner:
    """Streams one shard until cancelled."""

    def __init__(self, shard: Shard, context: ShardContext) -> None:
        self.shard = shard
        self._context = context
        self.clients: dict[str, BinanceStreamClient] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._policies: dict[str, RestartPolicy] = {}
        self._fatal: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._retiring: set[asyncio.Task[None]] = set()  # delisted symbols' last trades

    @property
    def failing(self) -> bool:
        return any(policy.failing for policy in self._policies.values())

    @property
    def streaming(self) -> bool:
        return all(client.connected.is_set() for client in self.clients.values())

    def health(self) -> dict[str, object]:
        return {
            "streams": len(self.shard.streams),
            "connections": {name: c.connected.is_set() for name, c in self.clients.items()},
            "failing": self.failing,
        }

    async def run(self) -> None:
        """Open the shard's connections and keep them up; returns only by raising."""
        try:
            self._apply(connection_urls(self.shard, self._context.binance))
            await self._fatal
        finally:
            await self._stop_all()

    def update(self, shard: Shard) -> None:
        """The plan changed the shard's streams (a listing, a delisting)."""
        if shard.streams == self.shard.streams:
            return
        added = sorted(set(shard.streams) - set(self.shard.streams))
        removed = sorted(set(self.shard.streams) - set(shard.streams))
        logger.info(
            "shard %s: %d streams added, %d removed",
            shard.id,
            len(added),
            len(removed),
            extra={"event_data": {"shard": shard.id, "added": added, "removed": removed}},
        )
        gone = tuple(s for s in self.shard.symbols if s not in shard.symbols)
        self.shard = shard
        self._apply(connection_urls(shard, self._context.binance))
        if gone:
            retiring = asyncio.create_task(self._context.keepers[shard.market].retire(gone))
            self._retiring.add(retiring)
            retiring.add_done_callback(self._retiring.discard)

    def _apply(self, urls: dict[str, str]) -> None:
        for name in [n for n in self.clients if n not in urls]:
            self._tasks.pop(name).cancel()  # the streams it carried left the plan
            del self.clients[name], self._policies[name]
        for name, url in urls.items():
            if name in self.clients:
                self.clients[name].retarget(url)
            else:
                self._start(name, url)

    def _start(self, name: str, url: str) -> None:
        ctx = self._context
        market = self.shard.market
        keepers = ctx.keepers[market]
        market_wide = {m: s.market_wide for m, s in ctx.binance.markets.items()}
        pipeline = FramePipeline(
            FrameParser(
                market,
                ctx.binance.markets[market].time_unit,
                left_to_other_market=left_to_other_market(market, market_wide),
            ),
            ctx.builder,
            ctx.sink,
            ctx.metrics,
            connection=name,
            continuity=keepers.continuity,
            books=keepers.books,
        )
        client = BinanceStreamClient(
            url,
            pipeline,
            ctx.binance,
            name=name,
            on_reconnect=ctx.metrics.reconnects.labels(market.value).inc,
            attempts=ctx.attempts,
        )
        c = ctx.coordination
        self._policies[name] = RestartPolicy(
            c.shard_failures_before_failing, c.shard_failure_window_s, c.failing_shard_retry_s
        )
        self.clients[name] = client
        self._tasks[name] = asyncio.create_task(self._supervise(name, client), name=name)

    async def _supervise(self, name: str, client: BinanceStreamClient) -> None:
        policy = self._policies[name]
        while True:
            started = time.monotonic()
            try:
                await client.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified: restarts() or the worker stops
                if not restarts(exc):  # a loss or a bug: the worker stops (gateway/errors.py)
                    if not self._fatal.done():
                        self._fatal.set_exception(exc)
                    return
                now = time.monotonic()
                if now - started > self._context.coordination.shard_failure_window_s:
                    policy.ran(now)  # it had been fine for a whole window
                delay = policy.failed(now)
                self._context.metrics.shard_restarts.labels(self.shard.id).inc()
                log = logger.error if policy.failing else logger.warning
                log(
                    "shard %s: connection %s failed (%s: %s); %s in %.1fs",
                    self.shard.id,
                    name,
                    type(exc).__name__,
                    exc,
                    "keeps failing, retrying" if policy.failing else "restarting",
                    delay,
                    extra={"event_data": {"shard": self.shard.id, "connection": name}},
                )
                client.connected.clear()
                await asyncio.sleep(delay)

    async def _stop_all(self) -> None:
        tasks = [*self._tasks.values(), *self._retiring]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
