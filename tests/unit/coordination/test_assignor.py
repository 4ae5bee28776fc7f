"""The leader's assignment: complete, exclusive, balanced, sticky, and a fixpoint."""

from __future__ import annotations

from hypothesis import given, strategies as st

from gateway.coordination.assignor import MIN_WEIGHT, MemberState, assign

PLAN = "plan-a"


def member(
    name: str, owned: set[int] | frozenset[int] = frozenset(), plan: str = PLAN
) -> MemberState:
    return MemberState(f"id-{name}", name, frozenset(owned), plan)


weights_strategy = st.dictionaries(
    st.integers(0, 40), st.floats(0, 100, allow_nan=False), min_size=1, max_size=40
)
names_strategy = st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=6, unique=True)


def loads(result: dict[str, frozenset[int]], weights: dict[int, float]) -> dict[str, float]:
    return {m: sum(max(weights.get(p, 0), MIN_WEIGHT) for p in ps) for m, ps in result.items()}


@given(weights_strategy, names_strategy, st.data())
def test_every_partition_goes_to_exactly_one_member(
    weights: dict[int, float], names: list[str], data: st.DataObject
) -> None:
    partitions = sorted(weights)
    members = [member(n, data.draw(st.sets(st.sampled_from(partitions)))) for n in names]
    result = assign(partitions, weights, members, PLAN)
    assigned = [p for ps in result.values() for p in ps]
    assert sorted(assigned) == partitions


@given(weights_strategy, names_strategy, st.data())
def test_the_spread_is_below_the_lightest_shard_of_the_heaviest_member(
    weights: dict[int, float], names: list[str], data: st.DataObject
) -> None:
    partitions = sorted(weights)
    members = [member(n, data.draw(st.sets(st.sampled_from(partitions)))) for n in names]
    result = assign(partitions, weights, members, PLAN)
    load = loads(result, weights)
    top = max(load, key=load.__getitem__)
    spread = load[top] - min(load.values())
    lightest_on_top = min(max(weights[p], MIN_WEIGHT) for p in result[top])
    assert spread <= lightest_on_top + 1e-6


@given(weights_strategy, names_strategy, st.data())
def test_a_second_round_over_its_own_result_moves_nothing(
    weights: dict[int, float], names: list[str], data: st.DataObject
) -> None:
    partitions = sorted(weights)
    members = [member(n, data.draw(st.sets(st.sampled_from(partitions)))) for n in names]
    first = assign(partitions, weights, members, PLAN)
    again = [member(n, first[f"id-{n}"]) for n in names]
    assert assign(partitions, weights, again, PLAN) == first


def test_a_joining_worker_takes_only_what_balance_needs() -> None:
    partitions = list(range(12))
    weights = dict.fromkeys(partitions, 1.0)
    before = assign(partitions, weights, [member("a"), member("b")], PLAN)
    members = [member("a", before["id-a"]), member("b", before["id-b"]), member("c")]
    after = assign(partitions, weights, members, PLAN)
    moved = sum(len(before[m] - after[m]) for m in ("id-a", "id-b"))
    assert len(after["id-c"]) == moved
    assert 3 <= len(after["id-c"]) <= 5  # 12 shards over 3: about 4 each
    assert before["id-a"] >= after["id-a"] and before["id-b"] >= after["id-b"]


def test_a_dead_workers_shards_go_to_the_survivors_and_nothing_else_moves() -> None:
    partitions = list(range(9))
    weights = dict.fromkeys(partitions, 1.0)
    names = ["a", "b", "c"]
    first = assign(partitions, weights, [member(n) for n in names], PLAN)
    survivors = [member(n, first[f"id-{n}"]) for n in ("a", "b")]
    after = assign(partitions, weights, survivors, PLAN)
    assert after["id-a"] >= first["id-a"] and after["id-b"] >= first["id-b"]
    assert after["id-a"] | after["id-b"] == set(partitions)


def test_heavy_shards_are_spread_before_light_ones() -> None:
    weights = {0: 100.0, 1: 100.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0}
    result = assign(sorted(weights), weights, [member("a"), member("b")], PLAN)
    assert {len(result["id-a"] & {0, 1}), len(result["id-b"] & {0, 1})} == {1}


def test_a_member_with_another_plan_gets_nothing() -> None:
    members = [member("a"), member("b", plan="plan-b")]
    result = assign([0, 1, 2], {}, members, PLAN)
    assert result == {"id-a": frozenset({0, 1, 2}), "id-b": frozenset()}


def test_no_member_shares_the_leaders_plan_means_nothing_is_assigned() -> None:
    result = assign([0, 1], {}, [member("a", plan="plan-b")], PLAN)
    assert result == {"id-a": frozenset()}


def test_a_shard_claimed_twice_stays_with_one_of_them() -> None:
    result = assign([0, 1], {}, [member("a", {0}), member("b", {0})], PLAN)
    assert result["id-a"] ^ result["id-b"] == {0, 1}
    assert 0 in result["id-a"]
