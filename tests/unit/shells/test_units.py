"""What a worker opens when it takes a shard: a market shard's runner or an account's stream,
chosen by the topology, and what it forgets when it lets go."""

from __future__ import annotations

import pytest

from gateway.binance.markets import Market
from gateway.binance.policy import SlidingWindowLimit
from gateway.coordination.plan import build_plan
from gateway.metrics import Metrics
from gateway.records.avro import SchemaCatalog, SingleObjectFraming
from gateway.records.builder import RecordBuilder
from gateway.records.topics import TopicNamer
from gateway.runtime.shards import MarketKeepers, ShardContext, ShardRunner
from gateway.runtime.topology import Topology
from gateway.runtime.units import AccountUnit, UnitFactory
from gateway.settings import GatewaySettings
from tests.unit.shells.fakes import AckingSink, EmptyTail


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> GatewaySettings:
    monkeypatch.setenv("UNIT_KEY", "key0123456789")
    monkeypatch.setenv("UNIT_SECRET", "secret0123456789")
    return GatewaySettings(
        binance={"markets": {"spot": {"symbols": ("BTCUSDT",), "channels": ("trade",)}}},
        accounts=[
            {
                "alias": "desk",
                "market": "spot",
                "api_key_env": "UNIT_KEY",
                "secret_env": "UNIT_SECRET",
            }
        ],
    )


def factory(settings: GatewaySettings, tail: EmptyTail) -> tuple[UnitFactory, Topology]:
    namer = TopicNamer("t")
    builder = RecordBuilder(SchemaCatalog.load(), SingleObjectFraming(), namer, "unit")
    context = ShardContext(
        settings.binance, settings.coordination, builder, AckingSink(lambda r, n: None, print),
        Metrics(), {Market.SPOT: MarketKeepers(None, None)}, SlidingWindowLimit(300, 300),
    )  # fmt: skip
    topology = Topology.of(settings, build_plan(settings.binance))
    return UnitFactory(lambda: topology, context, tail, namer, {}), topology


async def test_an_account_shard_opens_its_stream_and_a_market_shard_its_runner(
    settings: GatewaySettings,
) -> None:
    tail = EmptyTail()
    units, topology = factory(settings, tail)
    account = await units.open("account-spot-desk")
    assert isinstance(account, AccountUnit)
    assert account.health()["name"] == "account-spot-desk"
    assert not account.streaming and not account.failing  # down until it runs
    units.close("account-spot-desk")  # an account keeps no per-symbol state

    (shard_id,) = (s for s in topology.plan.ids if topology.plan.shard(s).symbols)
    runner = await units.open(shard_id)
    assert isinstance(runner, ShardRunner) and runner.shard is topology.shard(shard_id)
    assert tail.calls == []  # the market keeps no trade continuity: no resume read
    units.close(shard_id)
    with pytest.raises(KeyError):
        await units.open("no-such-shard")
