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
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gateway.adapters.binance_ws import BinanceStreamClient, RefusedHandler, SilenceAllowance
from gateway.binance.markets import Market
from gateway.binance.merger import left_to_other_market
from gateway.binance.messages import FrameParser, channel_of
from gateway.binance.policy import SlidingWindowLimit, backoff
from gateway.binance.streams import chunk, combined_path
from gateway.coordination.plan import Shard, streams_by_route
from gateway.coordination.supervision import RestartPolicy, restarts
from gateway.metrics import Metrics
from gateway.records.builder import RecordBuilder
from gateway.records.topics import RecordSink
from gateway.runtime.book import BookKeeper
from gateway.runtime.liveness import LivenessMonitor
from gateway.runtime.pipeline import FrameLimits, FramePipeline
from gateway.runtime.sequence import TradeContinuity
from gateway.settings import BinanceSettings, CoordinationSettings

logger = logging.getLogger(__name__)

PROBE_AFTER_S = 5.0
"""After a connection opens, symbols whose trade streams said nothing for this long are probed
over REST: a quiet symbol's hole is otherwise found only at its next trade."""
_TRADE_CHANNELS = {"trade": "trade", "aggTrade": "agg_trade"}  # channel -> record kind


class StreamClient(Protocol):
    """One WebSocket connection as a shard drives it: run (reconnecting on its own), move to
    another URL without a gap, say whether it is connected."""

    name: str
    url: str
    connected: asyncio.Event
    reconnects: int

    async def run(self) -> None: ...

    def retarget(self, url: str) -> None: ...


class StreamClientFactory(Protocol):
    """Opens a shard's connection; :class:`BinanceStreamClient` in production."""

    def __call__(
        self,
        url: str,
        handler: FramePipeline,
        settings: BinanceSettings,
        *,
        name: str,
        on_reconnect: Callable[[], None] | None = None,
        attempts: SlidingWindowLimit | None = None,
        on_refused: RefusedHandler | None = None,
        silence_allowance: SilenceAllowance | None = None,
        on_connected: Callable[[], None] | None = None,
    ) -> StreamClient: ...


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
    limits: FrameLimits = field(default_factory=FrameLimits)
    liveness: LivenessMonitor | None = None
    """Per-stream liveness of the whole process; ``None``: one fixed timer per connection."""
    connect: StreamClientFactory = BinanceStreamClient
    """Opens each connection (tests pass a scripted client)."""
    restart_delays: Callable[[], Iterator[float]] = backoff
    """A failed connection's restart schedule, fresh per connection (tests pass a short one)."""


def connection_urls(shard: Shard, binance: BinanceSettings) -> dict[str, str]:
    """Connection name → URL for the shard's streams (none for an empty shard)."""
    return {name: url for name, (url, _) in connection_streams(shard, binance).items()}


def connection_streams(
    shard: Shard, binance: BinanceSettings
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Connection name → its URL and the streams it carries."""
    market_settings = binance.markets[shard.market]
    by_route = streams_by_route(shard.market, shard.streams, market_settings.routes)
    urls = {}
    for route, names in sorted(by_route.items()):
        for index, group in enumerate(chunk(names, market_settings.max_streams_per_connection)):
            name = f"{shard.id}{route.replace('/', '-')}-{index}"
            path = combined_path(group, market_settings.time_unit)
            urls[name] = (binance.stream_url(shard.market) + route + path, tuple(group))
    return urls


def streams_of(url: str) -> set[str]:
    """The stream names a combined-stream URL subscribes to, lowercase (as Binance names them in
    its frames, whatever case they were asked in)."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    return {name.lower() for value in query.get("streams", []) for name in value.split("/") if name}


class ShardRunner:
    """Streams one shard until cancelled."""

    def __init__(self, shard: Shard, context: ShardContext, *, inherited: bool = False) -> None:
        """``inherited``: taken from a worker that left the group without releasing the shard
        (its lost windows are declared here: :meth:`LivenessMonitor.subscribed`)."""
        self.shard = shard
        self._context = context
        self._inherited = inherited
        self.clients: dict[str, StreamClient] = {}
        self._streams: dict[str, tuple[str, ...]] = {}  # connection name → its streams
        self._opened: set[str] = set()  # connections that were open once (the next is a reconnect)
        self._probes: dict[str, asyncio.Task[None]] = {}  # per connection, see _probe_quiet
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._policies: dict[str, RestartPolicy] = {}
        self._subscribed: dict[str, set[str]] = {}  # per connection: what its frames may name
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
            self._apply(connection_streams(self.shard, self._context.binance))
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
        self._apply(connection_streams(shard, self._context.binance))
        if gone:
            retiring = asyncio.create_task(self._context.keepers[shard.market].retire(gone))
            self._retiring.add(retiring)
            retiring.add_done_callback(self._retiring.discard)

    def _apply(self, plan: dict[str, tuple[str, tuple[str, ...]]]) -> None:
        liveness, market = self._context.liveness, self.shard.market
        old = {s for streams in self._streams.values() for s in streams}
        new = {s for _, streams in plan.values() for s in streams}
        if liveness is not None:
            liveness.unwatch(market, sorted(old - new))
            liveness.watch(market, sorted(new - old))
        self._streams = {name: streams for name, (_, streams) in plan.items()}
        for name in [n for n in self.clients if n not in plan]:
            self._tasks.pop(name).cancel()  # the streams it carried left the plan
            del self.clients[name], self._policies[name], self._subscribed[name]
        for name, (url, _) in plan.items():
            if name in self.clients:
                # Grown, never shrunk: the connection being replaced still carries the old ones.
                self._subscribed[name] |= streams_of(url)
                self.clients[name].retarget(url)
            else:
                self._start(name, url)

    def _start(self, name: str, url: str) -> None:
        ctx = self._context
        market = self.shard.market
        keepers = ctx.keepers[market]
        market_wide = {m: s.market_wide for m, s in ctx.binance.markets.items()}
        subscribed = self._subscribed[name] = streams_of(url)
        pipeline = FramePipeline(
            FrameParser(
                market,
                ctx.binance.markets[market].time_unit,
                left_to_other_market=left_to_other_market(market, market_wide),
                subscribed=subscribed,
            ),
            ctx.builder,
            ctx.sink,
            ctx.metrics,
            connection=name,
            continuity=keepers.continuity,
            books=keepers.books,
            limits=ctx.limits,
            liveness=ctx.liveness,
        )
        liveness = ctx.liveness
        client = ctx.connect(
            url,
            pipeline,
            ctx.binance,
            name=name,
            on_reconnect=ctx.metrics.reconnects.labels(market.value).inc,
            attempts=ctx.attempts,
            on_refused=pipeline.refuse,
            silence_allowance=None
            if liveness is None
            else lambda: liveness.connection_allowance_s(market, self._streams.get(name, ())),
            on_connected=None if liveness is None else lambda: self._connected(name),
        )
        c = ctx.coordination
        self._policies[name] = RestartPolicy(
            c.shard_failures_before_failing,
            c.shard_failure_window_s,
            c.failing_shard_retry_s,
            ctx.restart_delays,
        )
        self.clients[name] = client
        self._tasks[name] = asyncio.create_task(self._supervise(name, client), name=name)

    def _connected(self, name: str) -> None:
        liveness = self._context.liveness
        assert liveness is not None
        reconnect = name in self._opened
        self._opened.add(name)
        liveness.subscribed(
            self.shard.market,
            self._streams.get(name, ()),
            reconnect=reconnect,
            inherited=self._inherited,
        )
        if self._context.keepers[self.shard.market].continuity is not None:
            # After a reconnect or a hand-over (the shard's first connection resumes from Kafka).
            # One probe per connection: a reconnect before it ran replaces it.
            earlier = self._probes.pop(name, None)
            if earlier is not None:
                earlier.cancel()
            probe = self._probes[name] = asyncio.create_task(
                self._probe_quiet(name), name=f"{name}-probe"
            )
            self._retiring.add(probe)
            probe.add_done_callback(self._retiring.discard)

    async def _probe_quiet(self, name: str) -> None:
        """Fetch what Binance holds after the last published id of the connection's trade
        streams that stayed quiet since it opened: per stream, not per symbol (a symbol whose
        ``trade`` delivers needs no ``aggTrades`` call for it), paced by the REST weight budget
        at its lowest priority."""
        await asyncio.sleep(PROBE_AFTER_S)
        liveness, market = self._context.liveness, self.shard.market
        continuity = self._context.keepers[market].continuity
        assert liveness is not None and continuity is not None
        streams = [s for s in self._streams.get(name, ()) if channel_of(s) in _TRADE_CHANNELS]
        quiet = liveness.quiet_since_subscription(market, streams)
        keys = sorted(
            {(s.partition("@")[0].upper(), _TRADE_CHANNELS[channel_of(s)]) for s in quiet}
        )
        if keys:
            logger.info("%s: probing %d quiet trade streams for trades missed", name, len(keys))
            await continuity.probe(keys)

    async def _supervise(self, name: str, client: StreamClient) -> None:
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
        if self._context.liveness is not None:
            streams = [s for group in self._streams.values() for s in group]
            self._context.liveness.release(self.shard.market, streams)
        tasks = [*self._tasks.values(), *self._retiring]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
