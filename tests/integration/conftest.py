"""Fixtures that wire the simulator and the gateway together against the real Kafka of tests/conftest.py."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest

from gateway.adapters.binance_ws import BinanceStreamClient
from gateway.runtime.worker import Gateway
from gateway.settings import GatewaySettings
from gateway.simulator.config import SimulatorConfig
from gateway.simulator.exchange import ExchangeSimulator

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


class TaskUnderTest:
    """Something under test running as a task until ``stop()`` (subclasses start ``_task``, which
    ends once ``_stop`` is set); a wait on it re-raises the task's failure at once."""

    _task: asyncio.Task[None]

    def __init__(self) -> None:
        self._stop = asyncio.Event()

    async def wait_until(self, condition: Callable[[], bool], timeout_s: float) -> None:
        async def reached() -> None:
            while not condition():
                if self._task.done():
                    self._task.result()
                await asyncio.sleep(0.05)

        await asyncio.wait_for(reached(), timeout_s)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.wait_for(self._task, 30)


class RunningGateway(TaskUnderTest):
    """A gateway running as a task, stopped (drained) by ``stop()``."""

    def __init__(self, settings: GatewaySettings) -> None:
        super().__init__()
        self.gateway = Gateway(settings)
        self._task = asyncio.create_task(self.gateway.run(self._stop))

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
