"""Faults on demand: break the simulator on purpose, from tests, HTTP or the CLI.

Every fault is one method of :class:`Faults`, named by a :class:`FaultKind` so the HTTP control
endpoint (``POST /_simulator/faults`` on the REST port, body ``{"kind": "gap", "symbol":
"BTCUSDT"}``) and the CLI's random mix (``fault_rate`` faults per second drawn from
``fault_kinds``) reach the same code. Connection faults hit one connection (``connection_id``)
or all of them.

What each fault looks like to a client:

* ``drop`` — the TCP connection is aborted: no close frame.
* ``stall`` — open, silent; pings are still answered. ``stall_no_pings`` — open, silent, and the
  socket is no longer read, so pings go unanswered (and the server's own keepalive eventually
  gives up on the client).
* ``gap`` — the next ``count`` fills of a symbol are recorded (REST has them) but never streamed:
  trade and aggregate-trade ids jump. ``depth_gap`` — one diff-depth event of a symbol is lost.
* ``malformed`` / ``truncated`` / ``oversized`` / ``unknown_event`` — one bad frame.
* ``extra_field`` — the next ``count`` payloads carry a field Binance might add tomorrow.
* ``server_shutdown`` — the ``serverShutdown`` event, then the connections close (1001).
* ``slow_rest`` / ``rest_error`` — the next ``count`` REST requests wait ``seconds`` / fail
  with ``status``.
* ``list_symbol`` / ``delist_symbol`` — not faults but market events, reached the same ways: a
  new ``symbol`` starts trading (exchangeInfo shows it ``TRADING``), or one stops (exchangeInfo
  shows ``status``: spot ``BREAK``, futures ``SETTLING`` by default) and its streams go silent.
  The random mix draws them only when named in ``fault_kinds``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from gateway.simulator.hub import Hub, Subscriber
from gateway.simulator.markets import Market
from gateway.simulator.payloads import combined_frame, encode
from gateway.simulator.render_market import server_shutdown_payload

if TYPE_CHECKING:
    from gateway.simulator.market import SimulatedMarket
    from gateway.simulator.trading import TradingLoop

logger = logging.getLogger(__name__)

OVERSIZED_BYTES = 2 * 1024 * 1024
"""Bigger than websockets' default 1 MiB ``max_size``."""
EXTRA_FIELD = ("zz", "a field Binance might add tomorrow")


class Listings(Protocol):
    """Who can list and delist symbols (the :class:`ExchangeSimulator`)."""

    def list_symbol(self, symbol: str) -> object: ...

    def delist_symbol(self, symbol: str, status: str | None = None) -> None: ...


class FaultKind(enum.Enum):
    """Every fault the simulator can inject."""

    DROP = "drop"
    STALL = "stall"
    STALL_NO_PINGS = "stall_no_pings"
    GAP = "gap"
    DEPTH_GAP = "depth_gap"
    MALFORMED = "malformed"
    TRUNCATED = "truncated"
    OVERSIZED = "oversized"
    UNKNOWN_EVENT = "unknown_event"
    EXTRA_FIELD = "extra_field"
    SERVER_SHUTDOWN = "server_shutdown"
    SLOW_REST = "slow_rest"
    REST_ERROR = "rest_error"
    LIST_SYMBOL = "list_symbol"
    DELIST_SYMBOL = "delist_symbol"


@dataclass(slots=True)
class RestFaults:
    """Pending REST faults, consumed one request at a time."""

    delay_s: float = 0.0
    delays_left: int = 0
    error_status: int = 500
    errors_left: int = 0

    def take_delay(self) -> float:
        """The delay for the next request (0 when none is pending)."""
        if self.delays_left <= 0:
            return 0.0
        self.delays_left -= 1
        return self.delay_s

    def take_error(self) -> int | None:
        """The error status for the next request, if one is pending."""
        if self.errors_left <= 0:
            return None
        self.errors_left -= 1
        return self.error_status


class Faults:
    """The simulator's fault injector."""

    def __init__(
        self,
        hub: Hub,
        trading: TradingLoop,
        market: SimulatedMarket,
        rest: RestFaults,
        *,
        clock_us: Any,
        listings: Listings | None = None,
    ) -> None:
        self._hub = hub
        self._listings = listings
        self._trading = trading
        self._market = market
        self.rest = rest
        self._clock_us = clock_us
        self.injected: list[FaultKind] = []
        self._tasks: set[asyncio.Task[None]] = set()  # strong references while they run

    def inject(self, kind: FaultKind | str, **params: Any) -> None:
        """Inject ``kind`` with its parameters (see each method)."""
        kind = FaultKind(kind)
        self.injected.append(kind)
        logger.info("injecting fault %s %s", kind.value, params)
        getattr(self, kind.value)(**params)

    # --- connections --------------------------------------------------------------------------

    def _targets(self, connection_id: int | None) -> list[Subscriber]:
        if connection_id is None:
            return self._hub.subscribers()
        found = self._hub.subscriber(connection_id)
        return [] if found is None else [found]

    def drop(self, connection_id: int | None = None) -> None:
        """Abort the TCP connection(s): no close frame."""
        for subscriber in self._targets(connection_id):
            subscriber.connection.transport.abort()

    def stall(self, connection_id: int | None = None) -> None:
        """Stop sending frames; keep the connection open and answering pings."""
        for subscriber in self._targets(connection_id):
            subscriber.stalled = True

    def stall_no_pings(self, connection_id: int | None = None) -> None:
        """Stop sending frames and stop reading, so pings are not answered."""
        for subscriber in self._targets(connection_id):
            subscriber.stalled = True
            subscriber.connection.transport.pause_reading()

    def _send(self, data: bytes, connection_id: int | None) -> None:
        for subscriber in self._targets(connection_id):
            subscriber.write_frame(data)
        self._hub.write_queued()

    def malformed(self, connection_id: int | None = None) -> None:
        """One frame that is not JSON."""
        self._send(b'{"e":"trade","E":17000000,"s":BTCUSDT,', connection_id)

    def truncated(self, connection_id: int | None = None) -> None:
        """One valid-looking frame cut in the middle."""
        payload = encode({"e": "aggTrade", "E": self._clock_us() // 1_000, "s": "BTCUSDT"})
        self._send(payload[: len(payload) // 2], connection_id)

    def oversized(self, connection_id: int | None = None, size: int = OVERSIZED_BYTES) -> None:
        """One valid JSON frame of ``size`` bytes."""
        head = b'{"e":"oversized","E":0,"pad":"'
        self._send(head + b"x" * max(0, size - len(head) - 2) + b'"}', connection_id)

    def unknown_event(self, connection_id: int | None = None) -> None:
        """One well-formed event of a type no document mentions."""
        payload = encode({"e": "simulatorNovelty", "E": self._clock_us() // 1_000, "s": "BTCUSDT"})
        for subscriber in self._targets(connection_id):
            body = combined_frame("btcusdt@novelty", payload) if subscriber.combined else payload
            subscriber.write_frame(body)
        self._hub.write_queued()

    def extra_field(self, count: int = 1) -> None:
        """The next ``count`` published payloads carry one more field."""
        self._hub.extra_fields += count

    def server_shutdown(self, close_after_s: float = 0.2) -> None:
        """Send ``serverShutdown`` to every connection, then close them all (1001)."""
        payload = encode(server_shutdown_payload(self._clock_us()))
        subscribers = self._hub.subscribers()
        for subscriber in subscribers:
            body = combined_frame("!serverShutdown", payload) if subscriber.combined else payload
            subscriber.write_frame(body)
        self._hub.write_queued()

        async def close_later() -> None:
            await asyncio.sleep(close_after_s)
            for subscriber in subscribers:
                await subscriber.connection.close(1001, "Server shutdown")

        task = asyncio.get_running_loop().create_task(close_later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- market data --------------------------------------------------------------------------

    def gap(self, symbol: str, count: int = 1) -> None:
        """The next ``count`` fills of ``symbol`` are recorded but not streamed."""
        self._trading.withhold(symbol, count)

    def depth_gap(self, symbol: str) -> None:
        """Lose the diff-depth changes accumulated so far for ``symbol``."""
        self._market.drop_pending_diffs(symbol.upper())

    # --- listings -----------------------------------------------------------------------------

    def list_symbol(self, symbol: str) -> None:
        """``symbol`` is listed (or listed again) and trades."""
        self._require_listings().list_symbol(symbol)

    def delist_symbol(self, symbol: str, status: str | None = None) -> None:
        """``symbol`` stops trading: exchangeInfo shows ``status``, its streams go silent."""
        self._require_listings().delist_symbol(symbol, status)

    def _require_listings(self) -> Listings:
        if self._listings is None:
            raise ValueError("this simulator cannot list or delist symbols")
        return self._listings

    # --- REST ---------------------------------------------------------------------------------

    def slow_rest(self, seconds: float = 1.0, count: int = 1) -> None:
        """The next ``count`` REST requests wait ``seconds`` first."""
        self.rest.delay_s, self.rest.delays_left = seconds, count

    def rest_error(self, status: int = 500, count: int = 1) -> None:
        """The next ``count`` REST requests fail with ``status``."""
        self.rest.error_status, self.rest.errors_left = status, count

    # --- soak ---------------------------------------------------------------------------------

    async def random_mix(self, rate: float, kinds: tuple[str, ...] = (), seed: int = 0) -> None:
        """Inject random faults at ``rate`` per second (exponential gaps) until cancelled."""
        rng = random.Random(f"{seed}:faults")
        chosen = [FaultKind(kind) for kind in kinds] or [
            kind for kind in FaultKind if kind not in _ONLY_WHEN_NAMED
        ]
        while True:
            await asyncio.sleep(rng.expovariate(rate))
            kind = rng.choice(chosen)
            params: dict[str, Any] = {}
            trading = [s for s in self._market.specs if self._market.is_trading(s)]
            if kind in (FaultKind.GAP, FaultKind.DEPTH_GAP, FaultKind.DELIST_SYMBOL):
                if not trading:
                    continue
                params["symbol"] = rng.choice(trading)
            elif kind is FaultKind.LIST_SYMBOL:
                params["symbol"] = self._next_listing(rng)
            elif kind not in _NO_CONNECTION and (subscribers := self._hub.subscribers()):
                params["connection_id"] = rng.choice(subscribers).connection_id
            self.inject(kind, **params)

    def _next_listing(self, rng: random.Random) -> str:
        """A delisted symbol to list again, or else a name this market has never listed."""
        halted = sorted(self._market.halted)
        if halted and rng.random() < 0.5:
            return rng.choice(halted)
        suffix = "USD_PERP" if self._market.market is Market.COINM else "USDT"
        index = len(self._market.specs)
        while f"NEW{index}{suffix}" in self._market.specs:
            index += 1
        return f"NEW{index}{suffix}"


_NO_CONNECTION = frozenset(
    {FaultKind.EXTRA_FIELD, FaultKind.SLOW_REST, FaultKind.REST_ERROR, FaultKind.SERVER_SHUTDOWN}
)
_ONLY_WHEN_NAMED = frozenset(
    {FaultKind.SERVER_SHUTDOWN, FaultKind.LIST_SYMBOL, FaultKind.DELIST_SYMBOL}
)


def parse_request(body: Mapping[str, Any]) -> tuple[FaultKind, dict[str, Any]]:
    """``{"kind": "gap", "symbol": "BTCUSDT"}`` -> the kind and its parameters.

    Raises:
        ValueError: no or an unknown ``kind``.
    """
    params = dict(body)
    kind = FaultKind(params.pop("kind", None))
    return kind, params
