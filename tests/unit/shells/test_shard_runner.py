"""A shard's connections under supervision: restarted with backoff, reported when they keep
failing, and never retried for a sink failure or a bug (those end the worker).

The connections are :class:`FailingClient` s, passed in through ``ShardContext.connect``; the
restart schedule through ``ShardContext.restart_delays``.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, ClassVar

import pytest

from gateway.binance.markets import Market
from gateway.binance.policy import SlidingWindowLimit
from gateway.coordination.plan import Shard
from gateway.errors import KafkaDeliveryError, StreamDisconnectedError
from gateway.metrics import Metrics
from gateway.records.avro import SchemaCatalog, SingleObjectFraming
from gateway.records.builder import RecordBuilder
from gateway.records.topics import TopicNamer
from gateway.runtime.shards import (
    MarketKeepers,
    ShardContext,
    ShardRunner,
    connection_urls,
)
from gateway.settings import BinanceSettings, CoordinationSettings

SHARD = Shard("spot-003", Market.SPOT, ("BTCUSDT",), ("btcusdt@aggTrade", "btcusdt@trade"), 2.0)


class FailingClient:
    """Stands in for BinanceStreamClient: connects, then fails the way it is told to."""

    instances: ClassVar[list[FailingClient]] = []
    error: ClassVar[type[Exception]] = StreamDisconnectedError

    def __init__(self, url: str, handler: object, settings: object, **kwargs: Any) -> None:
        self.url = url
        self.name = str(kwargs["name"])
        self.runs = 0
        self.reconnects = 0
        self.connected = asyncio.Event()
        FailingClient.instances.append(self)

    async def run(self) -> None:
        self.runs += 1
        self.connected.set()
        await asyncio.sleep(0)
        raise FailingClient.error("boom")

    def retarget(self, url: str) -> None:
        self.url = url


def context(metrics: Metrics, failures: int = 3) -> ShardContext:
    namer = TopicNamer("t")
    builder = RecordBuilder(SchemaCatalog.load(), SingleObjectFraming(), namer, "unit")
    coordination = CoordinationSettings(
        shard_failures_before_failing=failures,
        shard_failure_window_s=60,
        failing_shard_retry_s=0.05,
    )
    return ShardContext(
        BinanceSettings(), coordination, builder, sink=None, metrics=metrics,  # type: ignore[arg-type]
        keepers={Market.SPOT: MarketKeepers(None, None)}, attempts=SlidingWindowLimit(300, 300),
        connect=FailingClient, restart_delays=lambda: iter(lambda: 0.01, None),
    )  # fmt: skip


@pytest.fixture(autouse=True)
def fake_client() -> None:
    FailingClient.instances = []
    FailingClient.error = StreamDisconnectedError  # what the supervisor restarts


async def test_a_connection_that_keeps_failing_is_restarted_then_reported() -> None:
    metrics = Metrics()
    runner = ShardRunner(SHARD, context(metrics, failures=3))
    task = asyncio.create_task(runner.run())
    async with asyncio.timeout(5):
        while not runner.failing:  # noqa: ASYNC110 - polling plain state
            await asyncio.sleep(0.01)
    client = FailingClient.instances[0]
    assert client.runs >= 3 and len(FailingClient.instances) == 1  # the same client, restarted
    restarts = metrics.registry.get_sample_value(
        "gateway_shard_restarts_total", {"shard": "spot-003"}
    )
    assert restarts is not None and restarts >= 3
    assert runner.health()["failing"] is True
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_sink_failure_is_not_retried_but_ends_the_shard() -> None:
    FailingClient.error = KafkaDeliveryError
    runner = ShardRunner(SHARD, context(Metrics()))
    with pytest.raises(KafkaDeliveryError):
        await asyncio.wait_for(runner.run(), 5)
    assert FailingClient.instances[0].runs == 1


async def test_a_bug_is_not_restarted_but_ends_the_shard() -> None:
    FailingClient.error = RuntimeError  # an exception outside the tree: a bug
    runner = ShardRunner(SHARD, context(Metrics()))
    with pytest.raises(RuntimeError, match="boom"):
        await asyncio.wait_for(runner.run(), 5)
    assert FailingClient.instances[0].runs == 1


class IdleClient(FailingClient):
    """Connects and stays connected until cancelled."""

    async def run(self) -> None:
        self.runs += 1
        self.connected.set()
        await asyncio.Event().wait()


async def test_a_plan_change_retargets_the_connection_make_before_break() -> None:
    runner = ShardRunner(SHARD, replace(context(Metrics()), connect=IdleClient))
    task = asyncio.create_task(runner.run())
    async with asyncio.timeout(5):
        while not runner.streaming or not runner.clients:  # noqa: ASYNC110 - polling plain state
            await asyncio.sleep(0.01)
    grown = Shard("spot-003", Market.SPOT, ("BTCUSDT", "NEWUSDT"),
                  (*SHARD.streams, "newusdt@trade"), 3.0)  # fmt: skip
    runner.update(grown)
    (client,) = FailingClient.instances
    assert "newusdt@trade" in client.url and runner.shard is grown
    assert runner.health()["connections"] == {client.name: True}
    runner.update(grown)  # the same streams: nothing to do
    assert FailingClient.instances == [client]
    emptied = Shard("spot-003", Market.SPOT, (), (), 0.0)
    runner.update(emptied)
    assert runner.clients == {} and runner.streaming  # nothing left to stream is not down
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.runs == 1  # never restarted


def test_urls_split_usdm_routes_into_connections() -> None:
    shard = Shard("usdm-001", Market.USDM, ("BTCUSDT",),
                  ("btcusdt@aggTrade", "btcusdt@depth@100ms"), 2.0)  # fmt: skip
    urls = connection_urls(shard, BinanceSettings(markets={Market.USDM: {}}))
    assert sorted(urls) == ["usdm-001-market-0", "usdm-001-public-0"]
    assert urls["usdm-001-public-0"].endswith("/public/stream?streams=btcusdt@depth@100ms")


def test_streams_of_reads_a_combined_url_back_into_lowercase_names() -> None:
    from gateway.runtime.shards import streams_of

    url = "wss://x/stream?streams=btcusdt@trade/BNBBTC@kline_1m@%2B08:00&timeUnit=MICROSECOND"
    assert streams_of(url) == {"btcusdt@trade", "bnbbtc@kline_1m@+08:00"}
