"""The worker's wiring without a broker: the in-process exchange simulator, in-memory Kafka (issue 12).

``Gateway`` takes its collaborators through the protocols of ``gateway.runtime.edges``: here
:class:`~tests.unit.shells.fakes.MemoryKafka` (an acknowledging sink, resume reads that find
nothing, a control log over the core's claim rules, a group of one) and, for one test, a REST
client whose exchangeInfo fails once. Binance is the simulator over loopback. The Kafka-backed
run of the same wiring is the integration tier (tests/integration/test_ownership.py,
test_shards_start_together.py).
"""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from gateway.adapters.binance_rest import BinanceRestClient
from gateway.binance.exchange_info import ListedSymbol
from gateway.binance.markets import Market
from gateway.errors import KafkaDeliveryError, UpstreamError
from gateway.runtime.worker import Gateway
from gateway.settings import GatewaySettings
from gateway.simulator.config import SimulatorConfig
from gateway.simulator.exchange import ExchangeSimulator
from tests.unit.shells.fakes import MemoryKafka, SharedLog

SYMBOLS = ("BTCUSDT", "ETHUSDT")


@pytest.fixture
async def simulator() -> AsyncIterator[ExchangeSimulator]:
    sim = ExchangeSimulator(SimulatorConfig(symbols=SYMBOLS, trades_per_second_per_symbol=50.0))
    await sim.start()
    yield sim
    await sim.stop()


def settings_for(sim: ExchangeSimulator, **binance: Any) -> GatewaySettings:
    return GatewaySettings(
        gateway_id="fast-gateway",
        binance={
            "markets": {
                "spot": {
                    "symbols": (*SYMBOLS, "NOSUCHUSDT"),
                    "stream_url": sim.ws_url,
                    "rest_url": sim.rest_url,
                    "channels": ("trade", "depth"),
                }
            },
            **binance,
        },
        kafka={"bootstrap_servers": "fake:9092", "topic_prefix": "fast", "create_topics": False},
        coordination={"enabled": False},
        status={"port": 0, "host": "127.0.0.1"},
        log={"level": "INFO", "json": False},
    )


async def wait_until_ready(gw: Gateway, task: asyncio.Task[None], timeout_s: float = 20) -> None:
    async with asyncio.timeout(timeout_s):
        while not (gw.readiness()[0] and gw.connections):
            if task.done():
                task.result()
            await asyncio.sleep(0.05)


async def test_a_worker_streams_every_shard_reports_ready_and_drains(
    simulator: ExchangeSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    kafka = MemoryKafka()
    acked: list[str] = []
    gw = Gateway(settings_for(simulator), on_ack=lambda r, ns: acked.append(r.topic), kafka=kafka)
    (sink,) = kafka.sinks
    assert gw.lease is None and sink.fence is None  # uncoordinated: nothing to fence
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    try:
        await wait_until_ready(gw, task)
        async with asyncio.timeout(20):
            while len(set(acked)) < 2:  # noqa: ASYNC110 - polling plain state
                await asyncio.sleep(0.05)
        ready, details = gw.readiness()
        assert ready and details["worker"] == "fast-gateway" and details["in_group"] is True
        assert details["not_streamed"] == ["spot NOSUCHUSDT"]  # configured, not listed
        assert details["held_back"] == {} and not details["draining"]
        shards = details["shards"]
        assert isinstance(shards, dict) and set(shards) == set(gw.layout())
        assert set(gw.layout()) == set(gw.plan.ids) and len(gw.fingerprint()) == 16
        assert "fast.spot.trade" in gw.topics() and set(gw.topics()) <= set(gw.all_topics())
        assert gw.reconnects == 0 and gw.group is None and kafka.controls == []
        assert {m for m, _ in kafka.tail.calls} == {Market.SPOT}  # trade shards resumed
        assert sink.dead_letter is not None  # refusals go to the dead-letter topic
        assert kafka.ensured == []  # kafka.create_topics is off

        sample = gw.metrics.registry.get_sample_value
        assert sample("gateway_records_acked_total", {"topic": "fast.spot.trade"})
        sink.on_error("KafkaTimeoutError")
        assert sample("gateway_producer_errors_total", {"error": "KafkaTimeoutError"}) == 1
        assert sample("gateway_kafka_queue_depth") == 0

        assert gw.status_server is not None
        port = gw.status_server.port
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5).read()
        )
        assert orjson.loads(body)["worker"] == "fast-gateway"
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)

    assert gw.draining and not gw.readiness()[0]
    assert sink.events[0] == "start" and sink.events[-1] == "stop" and "flush" in sink.events
    topics = {record.topic for record in sink.sent}
    # Trades and the depth channel's records, all on topics the catalogue declares.
    assert "fast.spot.trade" in topics and len(topics) >= 2 and topics <= set(gw.all_topics())
    assert set(acked) <= topics and len(acked) == len(sink.sent)
    assert "NOSUCHUSDT is configured but exchangeInfo does not list it" in caplog.text


async def test_a_worker_cancelled_from_outside_still_drains_briefly(
    simulator: ExchangeSimulator,
) -> None:
    kafka = MemoryKafka()
    gw = Gateway(settings_for(simulator), kafka=kafka)
    task = asyncio.create_task(gw.run())
    async with asyncio.timeout(20):
        await gw.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gw.draining and kafka.sinks[0].events[-1] == "stop"


async def test_listings_join_and_leave_a_running_shard_and_the_metrics_follow(
    simulator: ExchangeSimulator,
) -> None:
    kafka = MemoryKafka()
    settings = settings_for(simulator, exchange_info_poll_s=0.2)
    settings = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"create_topics": True})}
    )
    gw = Gateway(settings, kafka=kafka)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))

    def streams() -> str:
        return " ".join(c.url for c in gw.connections)

    async def until(condition: Any) -> None:
        while not condition():
            if task.done():
                task.result()
            await asyncio.sleep(0.05)

    try:
        async with asyncio.timeout(20):
            await wait_until_ready(gw, task)
            assert "nosuchusdt@trade" not in streams()
            simulator.list_symbol("NOSUCHUSDT")
            await until(
                lambda: (
                    "nosuchusdt@trade" in streams()
                    and not gw.readiness()[1]["not_streamed"]
                    and all(c.connected.is_set() for c in gw.connections)
                )  # the new one is up
            )
            sample = gw.metrics.registry.get_sample_value
            assert sample("gateway_plan_symbols", {"market": "spot"}) == 3
            assert sample("gateway_connections_up", {"market": "spot"}) == len(gw.connections)
            assert (sample("gateway_rest_weight_used", {"market": "spot"}) or 0) > 0
            assert sample("gateway_shards_owned") == len(gw.layout())
            simulator.delist_symbol("ETHUSDT")
            await until(lambda: "ethusdt@trade" not in streams())
            assert gw.plan.symbols(Market.SPOT) == ("BTCUSDT", "NOSUCHUSDT")
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    assert set(gw.topics()) <= set(kafka.ensured)


def coordinated(sim: ExchangeSimulator) -> GatewaySettings:
    settings = settings_for(sim)
    return settings.model_copy(
        update={"coordination": settings.coordination.model_copy(update={"enabled": True})}
    )


async def test_a_coordinated_worker_retires_stale_claims_takes_its_assignment_and_lets_go(
    simulator: ExchangeSimulator,
) -> None:
    settings = coordinated(simulator)
    layout = Gateway(settings, kafka=MemoryKafka()).layout()
    log = SharedLog(len(layout) + 1)  # a control topic grown for a larger configuration
    await log.write(0, layout[0], "fast-gateway", True)  # left by an earlier run of this worker
    await log.write(1, layout[1], "crashed-worker", True)  # a worker gone from the group
    kafka = MemoryKafka(log)
    gw = Gateway(settings, kafka=kafka)
    assert gw.lease is not None and kafka.sinks[0].fence is not None  # records fenced
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    try:
        await wait_until_ready(gw, task)
        (control,), (group,) = kafka.controls, kafka.groups
        assert kafka.control_specs[0].name == gw.control_topic
        assert kafka.leases == [gw.lease] and gw.group is group
        assert gw.readiness()[1]["in_group"] is True
        assert [log.claims[p].holder for p in range(len(layout))] == ["fast-gateway"] * len(layout)
        assert log.claims[len(layout)].holder is None  # past the layout: nobody's shard
        assert (1, layout[1], "crashed-worker", False) in log.writes  # retired on taking over
        metadata = orjson.loads(group.metadata)
        assert metadata["worker"] == "fast-gateway" and metadata["plan"] == gw.fingerprint()
        assert group.assignor.metadata(["control"]).user_data  # the owned partitions, now
        owned = orjson.loads(group.assignor.metadata(["control"]).user_data)["owned"]
        assert owned == list(range(len(layout)))
        sample = gw.metrics.registry.get_sample_value
        assert sample("gateway_rebalances_total") == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    # The earlier run's claim was withdrawn before this run claimed the shard again.
    assert log.writes[2] == (0, layout[0], "fast-gateway", False)
    assert all(log.claims[p].holder is None for p in range(len(layout)))  # all let go
    assert group.stopped and control.stopped


async def test_a_failed_membership_ends_the_worker_after_a_drain(
    simulator: ExchangeSimulator,
) -> None:
    settings = coordinated(simulator)
    layout = Gateway(settings, kafka=MemoryKafka()).layout()
    log = SharedLog(len(layout))
    kafka = MemoryKafka(log, group_fails=KafkaDeliveryError("expelled"))
    gw = Gateway(settings, kafka=kafka)
    with pytest.raises(KafkaDeliveryError, match="expelled"):
        await asyncio.wait_for(gw.run(), 20)
    assert gw.draining and kafka.sinks[0].events[-1] == "stop"
    assert kafka.groups[0].stopped
    assert all(log.claims[p].holder is None for p in range(len(layout)))


class UnlistedRest(BinanceRestClient):
    """A market whose exchangeInfo cannot be asked at start-up."""

    async def exchange_info(self) -> tuple[ListedSymbol, ...]:
        raise UpstreamError("exchangeInfo: 503")


async def test_a_market_without_listings_at_start_streams_its_symbols_as_configured(
    simulator: ExchangeSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    opened: list[Market] = []

    def rest_clients(url: str, market: Market, /) -> BinanceRestClient:
        opened.append(market)
        return UnlistedRest(url, market)

    gw = Gateway(settings_for(simulator), kafka=MemoryKafka(), rest_clients=rest_clients)
    stop = asyncio.Event()
    with caplog.at_level(logging.WARNING):
        task = asyncio.create_task(gw.run(stop))
        try:
            async with asyncio.timeout(20):
                await gw.started.wait()
            assert opened == [Market.SPOT]
            assert gw.plan.not_trading == ()  # nothing to say TRADING or not
            assert "NOSUCHUSDT" in gw.plan.symbols(Market.SPOT)
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
    assert "spot exchangeInfo unavailable" in caplog.text
