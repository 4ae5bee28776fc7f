"""Fixtures that wire the simulator and the gateway together against the real Kafka of tests/conftest.py."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Self

import pytest

from gateway.adapters.binance_ws import BinanceStreamClient
from gateway.runtime.worker import Gateway
from gateway.settings import GatewaySettings
from gateway.simulator.config import SimulatorConfig
from gateway.simulator.exchange import ExchangeSimulator

log = logging.getLogger(__name__)

# ``await simulator_factory(**SimulatorConfig_fields)`` returns a started simulator.
SimulatorFactory = Callable[..., Awaitable[ExchangeSimulator]]


@pytest.fixture
def topic_prefix() -> str:
    """Topics of their own for each test, so tests sharing one broker never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}"


@contextlib.asynccontextmanager
async def started_simulators(defaults: Mapping[str, Any]) -> AsyncIterator[SimulatorFactory]:
    """``await start(clock_us=None, **overrides)`` starts a simulator (``defaults`` plus
    ``overrides``, on ``clock_us`` if given); every one started is stopped on leaving."""
    started: list[ExchangeSimulator] = []

    async def start(
        clock_us: Callable[[], int] | None = None, **overrides: Any
    ) -> ExchangeSimulator:
        config = SimulatorConfig(**{**defaults, **overrides})
        sim = (
            ExchangeSimulator(config)
            if clock_us is None
            else ExchangeSimulator(config, clock_us=clock_us)
        )
        await sim.start()
        started.append(sim)
        return sim

    try:
        yield start
    finally:
        for sim in started:
            await sim.stop()


@pytest.fixture
async def simulator_factory() -> AsyncIterator[SimulatorFactory]:
    async with started_simulators({}) as start:
        yield start


def gateway_settings(
    sim: ExchangeSimulator,
    *,
    symbols: tuple[str, ...],
    kafka_bootstrap: str,
    topic_prefix: str,
    registry_url: str | None,
    **market: Any,
) -> GatewaySettings:
    return GatewaySettings(
        gateway_id="it-gateway",
        binance={
            "markets": {
                "spot": {
                    "symbols": symbols,
                    "stream_url": sim.ws_url,
                    "rest_url": sim.rest_url,
                    **market,
                }
            }
        },
        kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": topic_prefix, "partitions": 3},
        registry={"url": registry_url},
        status={"port": 0},
        log={"level": "INFO", "json": False},
    )


STOP_TIMEOUT_S = 30.0
"""How long a stop (the drain) may take before the task is cancelled and the stop fails."""
CANCEL_TIMEOUT_S = 15.0
"""How long a cancelled task may take to end; longer means it ignores cancellation (a bug)."""


class TaskUnderTest:
    """Something under test running as a task until ``stop()`` (subclasses start ``_task``, which
    ends once ``_stop`` is set); a wait on it re-raises the task's failure at once.

    Also an async context manager that leaves nothing running: the task is stopped on leaving
    (cancelled if it will not stop), so a failed or timed-out test does not leave sockets for
    the next test to trip over.
    """

    _task: asyncio.Task[None]

    def __init__(self) -> None:
        self._stop = asyncio.Event()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.stop()  # a no-op once stopped; a stop that fails fails the test
            return
        try:
            await self.stop()
        except Exception:  # the body's failure is the one to report
            log.exception("stopping %s after a failure failed too", self._task.get_name())

    async def wait_until(self, condition: Callable[[], bool], timeout_s: float) -> None:
        async def reached() -> None:
            while not condition():
                if self._task.done():
                    self._task.result()
                await asyncio.sleep(0.05)

        await asyncio.wait_for(reached(), timeout_s)

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Ask the task to stop and wait for it, re-raising its failure. One still running after
        ``timeout_s`` is cancelled and TimeoutError raised (``wait_for`` would instead wait for
        the cancelled task without a bound)."""
        self._stop.set()
        await asyncio.wait([self._task], timeout=timeout_s)
        if not self._task.done():
            await self.cancel()
            raise TimeoutError(f"{self._task.get_name()} did not stop within {timeout_s:.0f}s")
        if not self._task.cancelled():
            self._task.result()

    async def cancel(self) -> None:
        """Cancel the task and wait, boundedly, until it ended."""
        if self._task.done():
            return
        self._task.cancel()
        await asyncio.wait([self._task], timeout=CANCEL_TIMEOUT_S)
        if not self._task.done():
            stack = io.StringIO()
            self._task.print_stack(file=stack)
            raise RuntimeError(
                f"{self._task.get_name()} ignored its cancellation for {CANCEL_TIMEOUT_S:.0f}s; "
                f"it waits in:\n{stack.getvalue()}"
            )


class RunningGateway(TaskUnderTest):
    """A gateway running as a task, stopped (drained) by ``stop()``."""

    def __init__(self, settings: GatewaySettings) -> None:
        super().__init__()
        self.gateway = Gateway(settings)
        self._task = asyncio.create_task(
            self.gateway.run(self._stop), name=f"gateway {settings.gateway_id}"
        )

    @property
    def status_url(self) -> str:
        """Base URL of the status server (``/healthz``, ``/readyz``, ``/metrics``) on loopback."""
        server = self.gateway.status_server
        assert server is not None, "the status server is enabled in these settings"
        return f"http://127.0.0.1:{server.port}"

    @property
    def clients(self) -> list[BinanceStreamClient]:
        """The worker's connections as the real WebSocket clients they are here (their
        counters: rotations, hand-over duplicates, frames)."""
        clients = [c for c in self.gateway.connections if isinstance(c, BinanceStreamClient)]
        assert len(clients) == len(self.gateway.connections)
        return clients

    async def wait_connected(self, timeout_s: float = 20.0) -> None:
        # Ready: in the group, every shard it was given held, and every connection up.
        await self.wait_until(
            lambda: bool(self.gateway.readiness()[0] and self.gateway.connections), timeout_s
        )

    async def wait_acked(self, count: int, timeout_s: float = 60.0) -> None:
        await self.wait_until(lambda: self.gateway.sink.stats.acked >= count, timeout_s)
