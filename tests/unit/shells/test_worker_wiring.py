"""The worker's wiring without a broker: the in-process exchange simulator, a fake producer (issue 12 item 7).

``Gateway`` builds its Kafka clients itself and takes no collaborators, so this test replaces two
names: ``gateway.adapters.kafka.AIOKafkaProducer`` (an acknowledging fake) and
``gateway.worker.LastIdReader`` (Kafka holds nothing yet). With coordination off, that is all the
broker the worker needs; Binance is the simulator over loopback. The coordinated path (control
log, group) has no seam and is left to the Kafka tier (tests/integration/test_ownership.py).
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator, Collection
from types import SimpleNamespace, TracebackType
from typing import Any, Self

import orjson
import pytest

import gateway.adapters.kafka as kafka
import gateway.worker as worker
from gateway.binance.markets import Market
from gateway.settings import GatewaySettings
from gateway.simulator.config import SimulatorConfig
from gateway.simulator.exchange import ExchangeSimulator
from gateway.worker import Gateway

SYMBOLS = ("BTCUSDT", "ETHUSDT")


class AppendOnly(list[bytes]):
    """aiokafka's BatchBuilder as the sink uses it: it takes every record."""

    def append(self, *, value: bytes, **_: object) -> bool:  # type: ignore[override]
        super().append(value)
        return True

    def close(self) -> None:
        return None


class AckingProducer:
    """Acknowledges every record at once, as a healthy broker would by the next flush."""

    sent: list[tuple[str, bytes]]
    stopped: list[bool]

    def __init__(self, **options: object) -> None:
        self.options = options

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.stopped.append(True)

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    def create_batch(self) -> AppendOnly:
        return AppendOnly()

    async def send_batch(
        self, batch: AppendOnly, topic: str, *, partition: int
    ) -> asyncio.Future[object]:
        self.sent.extend((topic, value) for value in batch)
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        future.set_result(SimpleNamespace(offset=len(self.sent)))
        return future

    async def flush(self) -> None:
        return None


class EmptyTail:
    """Kafka's last trade ids when nothing was written yet: none."""

    calls: list[tuple[Market, tuple[str, ...]]]

    def __init__(self, *args: object) -> None:
        pass

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def last_ids(
        self, market: Market, symbols: Collection[str]
    ) -> dict[tuple[str, str], int]:
        self.calls.append((market, tuple(symbols)))
        return {}


@pytest.fixture
async def simulator() -> AsyncIterator[ExchangeSimulator]:
    sim = ExchangeSimulator(SimulatorConfig(symbols=SYMBOLS, trades_per_second_per_symbol=50.0))
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
def no_broker(monkeypatch: pytest.MonkeyPatch) -> tuple[type[AckingProducer], type[EmptyTail]]:
    class Producer(AckingProducer):
        sent: list[tuple[str, bytes]] = []  # noqa: RUF012 - one test's record
        stopped: list[bool] = []  # noqa: RUF012

    class Tail(EmptyTail):
        calls: list[tuple[Market, tuple[str, ...]]] = []  # noqa: RUF012

    monkeypatch.setattr(kafka, "AIOKafkaProducer", Producer)
    monkeypatch.setattr(worker, "LastIdReader", Tail)
    return Producer, Tail


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


async def test_a_worker_streams_every_shard_reports_ready_and_drains(
    simulator: ExchangeSimulator,
    no_broker: tuple[type[AckingProducer], type[EmptyTail]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer, tail = no_broker
    acked: list[str] = []
    gw = Gateway(settings_for(simulator), on_ack=lambda r, ns: acked.append(r.topic))
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    try:
        async with asyncio.timeout(20):
            while not (gw.readiness()[0] and gw.connections and len(set(acked)) >= 2):
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        ready, details = gw.readiness()
        assert ready and details["worker"] == "fast-gateway" and details["in_group"] is True
        assert details["not_streamed"] == ["spot NOSUCHUSDT"]  # configured, not listed
        assert details["held_back"] == {} and not details["draining"]
        assert set(gw.layout()) == set(gw.plan.ids) and len(gw.fingerprint()) == 16
        assert "fast.spot.trade" in gw.topics() and set(gw.topics()) <= set(gw.all_topics())
        assert gw.reconnects == 0
        assert {m for m, _ in tail.calls} == {Market.SPOT}  # trade shards resumed from Kafka

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
    assert producer.stopped == [True]
    topics = {topic for topic, _ in producer.sent}
    # Trades and the depth channel's records, all on topics the catalogue declares.
    assert "fast.spot.trade" in topics and len(topics) >= 2 and topics <= set(gw.all_topics())
    assert set(acked) <= topics and len(acked) == len(producer.sent)
    assert "NOSUCHUSDT is configured but exchangeInfo does not list it" in caplog.text


async def test_a_worker_cancelled_from_outside_still_drains_briefly(
    simulator: ExchangeSimulator,
    no_broker: tuple[type[AckingProducer], type[EmptyTail]],
) -> None:
    producer, _ = no_broker
    gw = Gateway(settings_for(simulator))
    task = asyncio.create_task(gw.run())
    async with asyncio.timeout(20):
        await gw.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gw.draining and producer.stopped == [True]


async def test_a_new_listing_joins_a_running_shard_and_the_metrics_follow(
    simulator: ExchangeSimulator,
    no_broker: tuple[type[AckingProducer], type[EmptyTail]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[str] = []

    class Admin:
        def __init__(self, **options: object) -> None:
            pass

        async def start(self) -> None:
            return None

        async def close(self) -> None:
            return None

        async def create_topics(self, new_topics: list[Any]) -> SimpleNamespace:
            created.extend(t.name for t in new_topics)
            return SimpleNamespace(topic_errors=[(t.name, 0, None) for t in new_topics])

    monkeypatch.setattr(kafka, "AIOKafkaAdminClient", Admin)
    settings = settings_for(simulator, exchange_info_poll_s=0.2)
    settings = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"create_topics": True})}
    )
    gw = Gateway(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))

    def streams() -> str:
        return " ".join(c.url for c in gw.connections)

    try:
        async with asyncio.timeout(20):
            while not (gw.readiness()[0] and gw.connections):  # noqa: ASYNC110 - polling readiness
                await asyncio.sleep(0.05)
            assert "nosuchusdt@trade" not in streams()
            simulator.list_symbol("NOSUCHUSDT")
            while (
                "nosuchusdt@trade" not in streams()
                or gw.readiness()[1]["not_streamed"]
                or not all(c.connected.is_set() for c in gw.connections)  # the new one is up
            ):
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        sample = gw.metrics.registry.get_sample_value
        assert sample("gateway_plan_symbols", {"market": "spot"}) == 3
        assert sample("gateway_connections_up", {"market": "spot"}) == len(gw.connections)
        assert (sample("gateway_rest_weight_used", {"market": "spot"}) or 0) > 0
        assert sample("gateway_shards_owned") == len(gw.layout())
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    assert set(gw.topics()) <= set(created)
