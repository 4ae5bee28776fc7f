"""``gateway demo``: a real Kafka and registry, the simulator, the gateway, and a live view.

The view reads the records back from Kafka (decoded through the registry), so what it shows is
what a downstream consumer gets, not what the gateway thinks it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from gateway.consumers.reader import ConsumedRecord, RecordReader
from gateway.infra.kafka import KafkaCluster
from gateway.infra.maven import fetch_all
from gateway.infra.registry import SchemaRegistry
from gateway.infra.stack import demo_work_dir, stop_orphaned_demos
from gateway.runtime.loop import install_stop_signals
from gateway.runtime.worker import Gateway
from gateway.settings import GatewaySettings
from gateway.simulator.config import SimulatorConfig, simulated_symbols
from gateway.simulator.exchange import ExchangeSimulator

# A taste of each family: trades, the book, candles and tickers.
DEMO_CHANNELS = ("trade", "aggTrade", "bookTicker", "depth@100ms", "kline_1m", "miniTicker")


@dataclass
class FlowView:
    """What the live view shows: records per topic and the latest trade per symbol."""

    started: float = field(default_factory=time.monotonic)
    per_topic: Counter[str] = field(default_factory=Counter)
    last_trade: dict[str, tuple[int, Decimal, Decimal]] = field(default_factory=dict)

    def add(self, record: ConsumedRecord) -> None:
        self.per_topic[record.topic] += 1
        if record.topic.endswith(".trade") and record.key:
            value = record.value
            self.last_trade[record.key] = (value["trade_id"], value["price"], value["quantity"])

    def render(self, gateway: Gateway) -> Group:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        topics = Table(title="Kafka topics (read back and decoded)", expand=False)
        for column in ("topic", "records", "per second"):
            topics.add_column(column, justify="right" if column != "topic" else "left")
        for topic, count in sorted(self.per_topic.items()):
            topics.add_row(topic, f"{count:,}", f"{count / elapsed:,.0f}")
        trades = Table(title="Latest trade per symbol", expand=False)
        for column in ("symbol", "trade id", "price", "quantity"):
            trades.add_column(column, justify="right" if column != "symbol" else "left")
        for symbol, (trade_id, price, quantity) in sorted(self.last_trade.items()):
            trades.add_row(symbol, str(trade_id), _plain(price), _plain(quantity))
        return Group(topics, trades, self.summary(gateway) + "  -  Ctrl-C stops")

    def summary(self, gateway: Gateway) -> str:
        stats = gateway.sink.stats
        return (
            f"gateway: {stats.acked:,} acknowledged by Kafka, {stats.failed} failed, "
            f"{gateway.reconnects:.0f} reconnects; "
            f"read back from Kafka: {sum(self.per_topic.values()):,}"
        )


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


@contextlib.asynccontextmanager
async def local_stack(console: Console) -> AsyncIterator[tuple[str, str]]:
    """A throw-away Kafka and registry; both stopped (no stray JVMs) however the demo ends."""
    with console.status("fetching Kafka and the schema registry (cached after the first run)"):
        await asyncio.to_thread(fetch_all)
    # Pid files where `make kafka-down` looks, should this process die without its finally.
    await asyncio.to_thread(stop_orphaned_demos)
    work_dir = demo_work_dir()
    kafka = KafkaCluster(1, work_dir=work_dir / "kafka")
    registry = SchemaRegistry(work_dir=work_dir / "registry")
    try:
        with console.status("starting Kafka and the schema registry"):
            started = time.monotonic()
            await asyncio.gather(asyncio.to_thread(kafka.start), asyncio.to_thread(registry.start))
        console.print(
            f"Kafka at {kafka.bootstrap_servers}, registry at {registry.url} "
            f"(up in {time.monotonic() - started:.1f} s)"
        )
        yield kafka.bootstrap_servers, registry.url
    finally:
        await asyncio.gather(asyncio.to_thread(kafka.stop), asyncio.to_thread(registry.stop))
        shutil.rmtree(work_dir, ignore_errors=True)


DEMO_STATUS_HOST = "127.0.0.1"  # a laptop's demo is nobody else's business
DEMO_STATUS_PORT = 8000


async def run_demo(
    *, symbols: int, rate: float, duration_s: float | None, status_port: int = DEMO_STATUS_PORT
) -> None:
    console = Console()
    names = simulated_symbols(symbols)
    stop = asyncio.Event()
    install_stop_signals(stop, hangup=True)
    async with local_stack(console) as (bootstrap, registry_url):
        sim_config = SimulatorConfig(symbols=names, trades_per_second_per_symbol=rate, seed=1)
        async with ExchangeSimulator(sim_config) as sim:
            settings = GatewaySettings(
                gateway_id="demo",
                binance={
                    "markets": {
                        "spot": {
                            "symbols": names,
                            "channels": DEMO_CHANNELS,
                            "stream_url": sim.ws_url,
                            "rest_url": sim.rest_url,
                        }
                    }
                },
                kafka={"bootstrap_servers": bootstrap, "partitions": 3},
                registry={"url": registry_url},
                status={"host": DEMO_STATUS_HOST, "port": status_port},
            )
            gateway = Gateway(settings)
            await _stream_with_view(console, gateway, bootstrap, registry_url, stop, duration_s)
    console.print("\nstopped cleanly: gateway drained, simulator, Kafka and registry shut down")


async def _stream_with_view(
    console: Console,
    gateway: Gateway,
    bootstrap: str,
    registry_url: str,
    stop: asyncio.Event,
    duration_s: float | None,
) -> None:
    view = FlowView()
    gateway_task = asyncio.create_task(gateway.run(stop), name="gateway")
    reader_task = asyncio.create_task(_follow(console, view, gateway, bootstrap, registry_url))
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        if console.is_terminal:
            with Live(view.render(gateway), console=console, refresh_per_second=4) as live:
                while await _keep_going(stop, gateway_task, deadline, 0.25):
                    live.update(view.render(gateway))
        else:  # piped or in CI: a plain line every few seconds instead of a redrawn screen
            while await _keep_going(stop, gateway_task, deadline, 2.0):
                console.print(view.summary(gateway))
            console.print(view.render(gateway))
    finally:
        stop.set()
        await gateway_task
        reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader_task


async def _keep_going(
    stop: asyncio.Event, gateway_task: asyncio.Task[None], deadline: float | None, period_s: float
) -> bool:
    """Wait one refresh period; False once it is time to stop."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), period_s)
    if deadline is not None and time.monotonic() >= deadline:
        stop.set()
    return not stop.is_set() and not gateway_task.done()


async def _follow(
    console: Console, view: FlowView, gateway: Gateway, bootstrap: str, registry_url: str
) -> None:
    await gateway.started.wait()  # the topics exist, and the status server listens, from then on
    if gateway.status_server is not None and gateway.status_server.port is not None:
        base = f"http://{DEMO_STATUS_HOST}:{gateway.status_server.port}"
        console.print(f"metrics at {base}/metrics, probes at {base}/healthz and {base}/readyz")
    async with RecordReader(
        gateway.topics(), bootstrap_servers=bootstrap, registry_url=registry_url
    ) as reader:
        async for record in reader.records():
            view.add(record)
