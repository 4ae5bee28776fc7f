"""The simulator as one object: market engine, history, stream and REST servers, trading loop.

::

    config = SimulatorConfig(symbols=("BTCUSDT",), start_paused=True, ping_interval_s=0.2)
    async with ExchangeSimulator(config) as sim:
        ...connect a client to sim.combined_url(["btcusdt@trade"])...
        await sim.wait_for_subscribers(["btcusdt@trade"])
        sim.run_for(trades_per_symbol=100)
        await sim.wait_idle()            # generated and written to every subscriber
        sent = sim.history.trades("BTCUSDT")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Self
from urllib.parse import quote

from gateway.simulator.config import SimulatorConfig
from gateway.simulator.engine import Clock, SymbolSpec, default_symbol_specs, symbol_spec
from gateway.simulator.faults import FaultKind, Faults, RestFaults, parse_request
from gateway.simulator.history import History
from gateway.simulator.hub import ConnectionStats, Hub
from gateway.simulator.market import SimulatedMarket
from gateway.simulator.markets import Market
from gateway.simulator.merger import OTHER_FUTURES
from gateway.simulator.payloads import Payload, TimeUnit
from gateway.simulator.payloads_user import listen_key_expired
from gateway.simulator.periodic import PeriodicPublisher
from gateway.simulator.rest import RestServer
from gateway.simulator.streams import COMBINED_PATH, RAW_PATH, Channel, StreamCatalog, stream_name
from gateway.simulator.trading import TradingLoop
from gateway.simulator.userdata import Account, ListenKeys
from gateway.simulator.ws_server import StreamServer

logger = logging.getLogger(__name__)


def system_clock_us() -> int:
    """Wall-clock time in epoch microseconds."""
    return time.time_ns() // 1_000


class ExchangeSimulator:
    """A Binance spot exchange double: WebSocket streams, REST, and the truth of what was sent.

    Args:
        config: what to simulate and how; defaults to :class:`SimulatorConfig`'s defaults.
        clock_us: source of event and trade times (epoch microseconds); inject one for
            reproducible payloads.
        specs: per-symbol prices, ticks and id offsets; derived from the config when omitted.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        clock_us: Clock = system_clock_us,
        specs: Sequence[SymbolSpec] | None = None,
    ) -> None:
        self.config = config = config or SimulatorConfig()
        specs = (
            list(specs)
            if specs is not None
            else default_symbol_specs(config.symbols, config.seed, config.market)
        )
        self.market = config.market
        self.history = History(
            [spec.symbol for spec in specs],
            config.history_max_per_symbol,
            market=config.market,
            specs=specs,
        )
        self._catalog = StreamCatalog((spec.symbol for spec in specs), config.market)
        # Unpaced trading runs as fast as the subscribers read: there, and only there, the
        # slowest reader brakes the market.
        self._hub = Hub(wait_for_readers=not config.trades_per_second_per_symbol)
        other = OTHER_FUTURES.get(config.market)
        self.simulated = SimulatedMarket(
            config.market,
            specs,
            config.seed,
            max_trades_per_fill=config.max_trades_per_fill,
            merged=config.futures_merger,
            liquidation_probability=config.liquidation_probability,
            other_market_specs=default_symbol_specs(config.other_market_symbols, config.seed, other)
            if other is not None
            else (),
        )
        self._specs = specs
        self._clock_us = clock_us
        self._trading = TradingLoop(
            self.simulated,
            self.history,
            self._hub,
            clock_us=clock_us,
            trades_per_second=config.trades_per_second_per_symbol,
            max_trades_per_symbol=config.max_trades_per_symbol,
            paused=config.start_paused,
        )
        self._periodic = PeriodicPublisher(
            self.simulated,
            self._catalog,
            self._hub,
            clock_us=clock_us,
            scale=config.update_interval_scale,
        )
        self.listen_keys = ListenKeys(config.listen_key_validity_s, config.seed)
        self.account = Account(config.market)
        self._streams = StreamServer(
            config, self._catalog, self._hub, self.listen_keys, now_ms=lambda: clock_us() // 1_000
        )
        rest_faults = RestFaults()
        self.faults = Faults(
            self._hub, self._trading, self.simulated, rest_faults, clock_us=clock_us, listings=self
        )
        self._rest = RestServer(
            config,
            self.simulated,
            self.history,
            clock_us,
            listen_keys=self.listen_keys,
            faults=rest_faults,
            inject_fault=self._inject_from_http,
            on_listen_key_closed=self._close_listen_key,
            account=self.account,
        )
        self._trading_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Open both servers, then start trading (unless configured paused)."""
        try:
            await self._streams.start()
            await self._rest.start()
        except BaseException:
            await self.stop()  # e.g. the REST port was taken: don't leave the stream server up
            raise
        self._trading_task = asyncio.create_task(self._trading.run(), name="simulator-trading")
        self._tasks = [
            asyncio.create_task(self._periodic.run(), name="simulator-periodic"),
            asyncio.create_task(self._expire_listen_keys(), name="simulator-listen-keys"),
        ]
        if self.config.fault_rate > 0:
            mix = self.faults.random_mix(
                self.config.fault_rate, self.config.fault_kinds, self.config.seed
            )
            self._tasks.append(asyncio.create_task(mix, name="simulator-faults"))
        logger.info(
            "%s simulator ready: streams %s, REST %s", self.market.value, self.ws_url, self.rest_url
        )

    def stop_faults(self) -> None:
        """End the random fault mix (``fault_rate``): the market goes on, healthy."""
        for task in self._tasks:
            if task.get_name() == "simulator-faults":
                task.cancel()

    async def stop(self) -> None:
        """Stop trading, close every connection and both servers."""
        tasks = [task for task in (self._trading_task, *self._tasks) if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._trading_task, self._tasks = None, []
        await self._streams.stop()
        await self._rest.stop()

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT``: append ``/ws/<stream>`` or ``/stream?streams=...``."""
        return self._streams.url

    @property
    def rest_url(self) -> str:
        """``http://127.0.0.1:PORT``: append ``/api/v3/...``."""
        return self._rest.url

    @property
    def specs(self) -> list[SymbolSpec]:
        """The simulated symbols' specs (prices, ticks, first ids)."""
        return list(self._specs)

    def stream_names(self, channels: Iterable[Channel] = tuple(Channel)) -> list[str]:
        """Every stream name this simulator publishes, for the given channels."""
        return [stream_name(spec.symbol, channel) for spec in self._specs for channel in channels]

    def combined_url(self, streams: Iterable[str], time_unit: TimeUnit | None = None) -> str:
        """The ``/stream?streams=a/b`` URL for these streams."""
        url = (
            f"{self.ws_url}{COMBINED_PATH}?streams={'/'.join(quote(s, safe='@') for s in streams)}"
        )
        return url if time_unit is None else f"{url}&timeUnit={time_unit.value}"

    def raw_url(self, streams: Iterable[str], time_unit: TimeUnit | None = None) -> str:
        """The ``/ws/a/b`` URL for these streams."""
        url = f"{self.ws_url}{RAW_PATH}/{'/'.join(quote(s, safe='@') for s in streams)}"
        return url if time_unit is None else f"{url}?timeUnit={time_unit.value}"

    def pause(self) -> None:
        """Stop trading after the current burst."""
        self._trading.pause()

    def resume(self) -> None:
        """Trade again, within the remaining budget if there is one."""
        self._trading.resume()

    def run_for(self, trades_per_symbol: int) -> None:
        """Generate exactly ``trades_per_symbol`` more trades for every symbol, then go idle."""
        self._trading.run_for(trades_per_symbol)

    def trades_generated(self, symbol: str) -> int:
        """How many trades ``symbol`` has had since start."""
        return self._trading.trades_generated(symbol)

    async def wait_idle(self, timeout_s: float | None = None) -> None:
        """Wait until trading stopped (paused or budget spent) and every frame was written.

        Raises:
            TimeoutError: not idle within ``timeout_s``.
        """
        async with asyncio.timeout(timeout_s):
            await self._while_trading(self._trading.wait_idle())
            await self._hub.flush()

    async def drained(self, timeout_s: float | None = None) -> None:
        """Wait until every frame generated so far has been written to its subscribers."""
        async with asyncio.timeout(timeout_s):
            await self._while_trading(self._hub.flush())

    async def wait_for_subscribers(
        self, streams: Iterable[str] | int = 1, timeout_s: float = 10.0
    ) -> None:
        """Wait until each named stream has a subscriber, or until ``streams`` subscriptions exist.

        With a count, every (connection, stream) pair counts once: a gateway holding 3 symbols x
        2 channels on one connection makes 6.

        Raises:
            TimeoutError: the condition did not hold within ``timeout_s``.
        """
        wanted = streams if isinstance(streams, int) else list(streams)

        def satisfied() -> bool:
            if isinstance(wanted, int):
                return self._hub.subscription_count >= wanted
            return all(self._hub.has_subscribers(name) for name in wanted)

        await self._hub.wait_until(satisfied, timeout_s)

    def never_serve(self, *streams: str) -> None:
        """Accept and list these stream names from now on, and never send them a frame: a
        name or route Binance accepts and does not serve (a renamed channel, a wrong route)."""
        self._hub.never_served.update(streams)

    @property
    def slow_reader_drops(self) -> int:
        """How many connections were cut because their client did not read."""
        return sum(1 for stats in self._hub.stats() if stats.dropped_slow)

    def inject(self, kind: FaultKind | str, **params: object) -> None:
        """Inject a fault now (see :mod:`gateway.simulator.faults`)."""
        self.faults.inject(kind, **params)

    def list_symbol(self, symbol: str) -> SymbolSpec:
        """List ``symbol``: exchangeInfo shows it TRADING and it trades, so its streams carry
        data to whoever subscribes to them (from the next connection or SUBSCRIBE on).

        A delisted symbol is listed again with its history, ids and book intact; a listed one
        is left as it is. Returns its spec.

        Raises:
            ValueError: not a symbol name this market could list.
        """
        symbol = symbol.upper()
        spec = self.simulated.specs.get(symbol)
        if spec is None:
            SimulatorConfig.model_validate({"market": self.market, "symbols": (symbol,)})
            spec = symbol_spec(symbol, len(self._specs), self.config.seed, self.market)
            self._specs.append(spec)
            self.history.add_symbol(symbol, spec)
            self._catalog.add_symbol(symbol)
        self.simulated.list_symbol(spec)
        self._trading.listed(symbol)
        logger.info("%s listed %s", self.market.value, symbol)
        return spec

    def delist_symbol(self, symbol: str, status: str | None = None) -> None:
        """Delist ``symbol``: exchangeInfo shows it ``status`` (spot ``BREAK``, futures
        ``SETTLING`` by default) and its streams go silent; connections stay open.

        Raises:
            KeyError: the symbol is not simulated.
            ValueError: ``status`` is not a non-trading state of this market.
        """
        self.simulated.delist_symbol(symbol.upper(), status)
        logger.info("%s delisted %s", self.market.value, symbol.upper())

    def _inject_from_http(self, body: dict[str, object]) -> None:
        kind, params = parse_request(body)
        self.faults.inject(kind, **params)

    def depth_snapshot(self, symbol: str, limit: int | None = None) -> object:
        """The book of ``symbol`` now, as ``GET depth`` would return it (pure data)."""
        return self.simulated.book(symbol.upper()).snapshot(limit)

    async def emit_user_fill(
        self, symbol: str, side: str = "BUY", *, api_key: str | None = None
    ) -> list[str]:
        """The simulated account's order fills at the best price: push its user-data events.

        Spot: to the WebSocket API subscriptions of ``api_key``; futures: to the connections of
        its listen keys. Returns the event types pushed, in order.
        """
        api_key = api_key or next(iter(self.config.api_keys))
        spec = self.simulated.specs[symbol.upper()]
        bid, ask = self.simulated.book(spec.symbol).top()
        level = ask if side == "BUY" else bid
        price = level[0] if level else spec.initial_price
        events = self.account.fill(spec, side, price, spec.lot_size, self._clock_us())
        return await self._push_user(api_key, events)

    async def emit_user_order(
        self, symbol: str, side: str = "BUY", *, api_key: str | None = None
    ) -> int:
        """The account places a limit order that rests (10% off the touch); returns its id."""
        spec = self.simulated.specs[symbol.upper()]
        bid, ask = self.simulated.book(spec.symbol).top()
        level = bid if side == "BUY" else ask
        touch = level[0] if level else spec.initial_price
        price = touch - touch // 10 if side == "BUY" else touch + touch // 10
        price -= price % spec.tick_size
        events = self.account.place(spec, side, price, spec.lot_size, self._clock_us())
        await self._push_user(api_key, events)
        return max(self.account.open_orders)

    async def emit_user_cancel(self, order_id: int, *, api_key: str | None = None) -> list[str]:
        """The account cancels a resting order: push its CANCELED update."""
        return await self._push_user(api_key, self.account.cancel(order_id, self._clock_us()))

    async def emit_user_deposit(
        self, asset: str, amount: int, *, api_key: str | None = None
    ) -> list[str]:
        """A deposit of ``amount`` (1e-8 units) of ``asset``: push the balance events."""
        return await self._push_user(
            api_key, self.account.deposit(asset.upper(), amount, self._clock_us())
        )

    async def emit_user_algo_order(
        self,
        symbol: str,
        side: str = "SELL",
        order_type: str = "STOP_MARKET",
        *,
        api_key: str | None = None,
    ) -> int:
        """USD-M: the account places a conditional order 10% off the touch (``ALGO_UPDATE``
        NEW); returns its algo id."""
        spec = self.simulated.specs[symbol.upper()]
        bid, ask = self.simulated.book(spec.symbol).top()
        level = bid if side == "SELL" else ask
        touch = level[0] if level else spec.initial_price
        trigger = touch - touch // 10 if side == "SELL" else touch + touch // 10
        trigger -= trigger % spec.tick_size
        now = self._clock_us()
        await self._push_user(
            api_key, self.account.algo_order(spec, side, order_type, trigger, now)
        )
        return max(self.account.algo_orders)

    async def emit_user_algo_trigger(
        self, algo_id: int, *, rejected: bool = False, api_key: str | None = None
    ) -> list[str]:
        """USD-M: the algo order triggers and fills (TRIGGERED, FINISHED), or is rejected
        (``CONDITIONAL_ORDER_TRIGGER_REJECT``, then REJECTED)."""
        events = self.account.trigger_algo(algo_id, self._clock_us(), rejected=rejected)
        return await self._push_user(api_key, events)

    async def emit_user_grid(self, symbol: str, *, api_key: str | None = None) -> list[str]:
        """Futures: a grid strategy opens and fills a sub-order (``STRATEGY_UPDATE``,
        ``GRID_UPDATE``)."""
        spec = self.simulated.specs[symbol.upper()]
        return await self._push_user(api_key, self.account.grid(spec, self._clock_us()))

    async def terminate_user_streams(self, api_key: str | None = None) -> int:
        """Spot: end ``api_key``'s WebSocket API subscriptions with ``eventStreamTerminated``."""
        return await self._streams.terminate_user_streams(
            api_key or next(iter(self.config.api_keys))
        )

    async def drop_user_streams(self) -> int:
        """Spot: close every WebSocket API connection (user-data subscriptions die with them)."""
        return await self._streams.drop_wsapi_connections()

    def expire_listen_keys(self, api_key: str | None = None) -> list[str]:
        """Futures: expire ``api_key``'s listen keys now (``listenKeyExpired``, then close)."""
        keys = self.listen_keys.keys_of(api_key or next(iter(self.config.api_keys)))
        for key in keys:
            self.listen_keys.close(key)
            self._close_listen_key(key, expired=True)
        return keys

    async def _push_user(self, api_key: str | None, events: list[tuple[str, Payload]]) -> list[str]:
        """Spot: to the WebSocket API subscriptions of ``api_key``; futures: to its listen keys."""
        api_key = api_key or next(iter(self.config.api_keys))
        for event_type, payload in events:
            if self.market is Market.SPOT:
                await self._streams.send_user_event(api_key, payload)
            else:
                for key in self.listen_keys.keys_of(api_key):
                    self._hub.publish_user(key, event_type, payload)
        self._hub.write_queued()
        return [event_type for event_type, _ in events]

    def _close_listen_key(self, key: str, *, expired: bool = False) -> None:
        """A listen key was deleted or expired: tell its connections, then close them."""
        if expired:
            self._hub.publish_user(
                key, "listenKeyExpired", listen_key_expired(self.market, key, self._clock_us())
            )
            self._hub.write_queued()
        for subscriber in self._hub.subscribers():
            if key in subscriber.streams:
                task = asyncio.get_running_loop().create_task(
                    subscriber.connection.close(
                        1008, "listenKey expired" if expired else "listenKey closed"
                    )
                )
                self._tasks.append(task)

    async def _expire_listen_keys(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.config.listen_key_validity_s / 4))
            for key in self.listen_keys.expire(self._clock_us() / 1_000_000):
                self._close_listen_key(key, expired=True)

    def connections(self) -> list[ConnectionStats]:
        """Every stream connection (recently closed ones first) with its frames-sent count."""
        return self._hub.stats()

    async def _while_trading(self, waiting: Awaitable[None]) -> None:
        """Await ``waiting``, but re-raise at once if the trading loop crashed meanwhile."""
        task = self._trading_task
        if task is None:
            raise RuntimeError("simulator not started")
        waiter = asyncio.ensure_future(waiting)
        try:
            done, _ = await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()  # no-op when it finished
        if waiter in done:
            return waiter.result()
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error
        raise RuntimeError("simulator stopped while waiting")


async def serve(
    config: SimulatorConfig, *, on_ready: Callable[[ExchangeSimulator], None] | None = None
) -> None:
    """Run a simulator until cancelled (``gateway simulate`` calls this)."""
    async with ExchangeSimulator(config) as simulator:
        if on_ready is not None:
            on_ready(simulator)
        await asyncio.get_running_loop().create_future()
