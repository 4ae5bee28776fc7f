"""The worker's topology as a value: plan + accounts → layout, fingerprint, weights, topics.

No I/O: a plan built from settings and listings, accounts from settings, compared with what the
control topic and the assignor must see.
"""

from __future__ import annotations

import hashlib

import pytest

from gateway.binance.exchange_info import ListedSymbol
from gateway.binance.markets import Market
from gateway.coordination.plan import build_plan
from gateway.runtime.topology import ACCOUNT_WEIGHT, Topology
from gateway.settings import GatewaySettings

ACCOUNTS = [
    {"alias": "desk-a", "market": "spot", "api_key_env": "TOPO_KEY", "secret_env": "TOPO_SECRET"},
    {"alias": "desk-b", "market": "usdm", "api_key_env": "TOPO_KEY", "secret_env": "TOPO_SECRET"},
]


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOPO_KEY", "key0123456789")
    monkeypatch.setenv("TOPO_SECRET", "secret0123456789")


def settings(accounts: list[dict[str, str]] | None = None) -> GatewaySettings:
    return GatewaySettings(
        binance={"markets": {"spot": {"symbols": ("BTCUSDT", "ETHUSDT"), "shards": 2}}},
        kafka={"topic_prefix": "t"},
        accounts=accounts or [],
    )


def listed(*symbols: str) -> dict[Market, tuple[ListedSymbol, ...]]:
    return {Market.SPOT: tuple(ListedSymbol(s, "TRADING", s[:3], "USDT", None) for s in symbols)}


def test_the_layout_is_the_plans_shards_then_one_partition_per_account() -> None:
    config = settings(ACCOUNTS)
    plan = build_plan(config.binance)
    topology = Topology.of(config, plan)
    assert topology.layout == (*plan.ids, "account-spot-desk-a", "account-usdm-desk-b")
    assert topology.partition("account-usdm-desk-b") == len(plan.ids) + 1
    assert topology.account("account-spot-desk-a") is config.accounts[0]
    assert topology.account(plan.ids[0]) is None
    assert topology.shard(plan.ids[0]) is plan.shards[0]
    with pytest.raises(KeyError):
        topology.shard("account-spot-desk-a")  # an account is not a market shard


def test_the_fingerprint_hashes_the_layout_and_ignores_what_the_shards_hold() -> None:
    config = settings(ACCOUNTS)
    before = Topology.of(config, build_plan(config.binance, listed("BTCUSDT", "ETHUSDT")))
    after = before.with_plan(build_plan(config.binance, listed("BTCUSDT")))  # a delisting
    expected = hashlib.blake2b("\n".join(before.layout).encode(), digest_size=8).hexdigest()
    assert before.fingerprint == expected == after.fingerprint
    assert (
        after.plan.not_trading == ((Market.SPOT, "ETHUSDT"),) and after.accounts is before.accounts
    )
    without_accounts = Topology.of(settings(), before.plan)
    assert without_accounts.fingerprint != before.fingerprint  # another worker's configuration


def test_weights_are_the_shards_rates_and_a_fixed_rate_per_account() -> None:
    config = settings(ACCOUNTS)
    topology = Topology.of(config, build_plan(config.binance))
    weights = topology.weights()
    assert sorted(weights) == list(range(len(topology.layout)))
    shards = topology.plan.shards
    assert [weights[i] for i in range(len(shards))] == [s.weight for s in shards]
    assert weights[len(shards)] == weights[len(shards) + 1] == ACCOUNT_WEIGHT
    assert sum(s.weight for s in shards) > 0


def test_partitions_and_shard_ids_translate_both_ways_ignoring_the_unknown() -> None:
    config = settings(ACCOUNTS)
    topology = Topology.of(config, build_plan(config.binance))
    layout = topology.layout
    # A control topic grown for a larger configuration has partitions past this layout.
    assert topology.shards_at({len(layout) + 3, 2, 0}) == [layout[0], layout[2]]
    assert topology.partitions_of({layout[2], "gone-shard", layout[0]}) == [0, 2]
    assert topology.partitions_of(topology.shards_at(range(len(layout)))) == list(
        range(len(layout))
    )


def test_topics_are_the_catalogues_with_the_account_topics_apart() -> None:
    topology = Topology.of(settings(ACCOUNTS), build_plan(settings(ACCOUNTS).binance))
    public, every = topology.topics(), topology.all_topics()
    assert "t.spot.trade" in public and "t.dead_letter" in public
    assert set(every) - set(public) == {"t.spot.account.desk-a", "t.usdm.account.desk-b"}
    plain = Topology.of(settings(), topology.plan)
    assert plain.topics() == plain.all_topics() == public
