"""A record Kafka refuses for itself goes to the dead-letter topic with the broker's error and the
gateway goes on (README "Nothing lost silently"; docs/delivery.md).

The trade topic is created beforehand with a ``max.message.bytes`` no record batch fits in, so the
broker itself refuses every trade (MESSAGE_TOO_LARGE, not retriable). The whole gateway must keep
running, publish the aggregate trades of the same symbol, and leave each refused trade in the
dead-letter topic naming the broker's error: refused, never dropped quietly, never a crash.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from gateway.adapters.decoder import ValueDecoder
from gateway.consumers.reader import read_all
from gateway.records.topics import TopicNamer
from gateway.runtime.worker import Gateway
from tests.integration.conftest import SimulatorFactory, gateway_settings

pytestmark = [pytest.mark.kafka]

TOO_SMALL_FOR_ANY_BATCH = "64"  # bytes; a record batch's header alone is 61
TRADES = 20


async def test_a_record_kafka_refuses_is_dead_lettered_and_the_gateway_goes_on(
    kafka_bootstrap: str, topic_prefix: str, simulator_factory: SimulatorFactory
) -> None:
    sim = await simulator_factory(
        symbols=("BTCUSDT",), seed=8, trades_per_second_per_symbol=50, start_paused=True,
        max_trades_per_symbol=TRADES,
    )  # fmt: skip
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([
            NewTopic(f"{topic_prefix}.spot.trade", 1, 1,
                     topic_configs={"max.message.bytes": TOO_SMALL_FOR_ANY_BATCH}),
        ])  # fmt: skip
    finally:
        await admin.close()
    settings = gateway_settings(
        sim,
        symbols=("BTCUSDT",),
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        registry_url=None,
        channels=["trade", "aggTrade"],
        backfill=False,
    )
    gateway = Gateway(settings)
    stop = asyncio.Event()
    run = asyncio.create_task(gateway.run(stop))
    await sim.wait_for_subscribers(2, timeout_s=30)
    sim.resume()
    await sim.wait_idle(timeout_s=60)
    trades = len(sim.history.trades("BTCUSDT"))
    aggs = len(sim.history.agg_trades("BTCUSDT"))
    assert trades > 0 and aggs > 0

    namer = TopicNamer(topic_prefix)
    letters = await read_all(
        [namer.dead_letter_topic()], bootstrap_servers=kafka_bootstrap, expected=trades
    )
    assert not run.done(), "the gateway stopped on one refused record"
    stop.set()
    await asyncio.wait_for(run, timeout=60)

    decoder = ValueDecoder()
    lettered = sorted(
        [(await decoder.decode(letter.value["raw"]))["trade_id"] for letter in letters]
    )
    assert lettered == [t["t"] for t in sim.history.trades("BTCUSDT")], (
        gateway.sink.stats,
        [letter.value["error"] for letter in letters][:3],
    )
    assert {letter.value["stage"] for letter in letters} == {"kafka"}
    assert all("TooLarge" in letter.value["error"] for letter in letters)
    published_aggs = await read_all(
        [namer.topic("spot", "agg_trade")], bootstrap_servers=kafka_bootstrap, expected=aggs
    )
    assert [r.value["agg_trade_id"] for r in published_aggs] == [
        a["a"] for a in sim.history.agg_trades("BTCUSDT")
    ]
