"""Claims on a shard: the oldest standing claim holds it, in the order Kafka stored them."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from gateway.coordination.control import (
    ControlError,
    ShardClaims,
    claim_key,
    claim_value,
    parse_key,
)


def test_first_claim_holds_until_it_is_released() -> None:
    claims = ShardClaims()
    claims.apply("a", 10, True)
    claims.apply("c", 11, True)
    assert claims.holder == "a"
    claims.apply("a", 12, False)
    assert claims.holder == "c"
    claims.apply("c", 13, False)
    assert claims.holder is None


def test_a_renewed_claim_queues_at_the_back() -> None:
    claims = ShardClaims()
    claims.apply("a", 1, True)
    claims.apply("b", 2, True)
    claims.apply("a", 3, True)
    assert claims.claimants() == ["b", "a"]


def test_releasing_a_waiting_claim_leaves_the_holder_alone() -> None:
    claims = ShardClaims()
    claims.apply("a", 1, True)
    claims.apply("b", 2, True)
    claims.apply("b", 3, False)
    assert claims.holder == "a" and claims.claimants() == ["a"]


events = st.lists(st.tuples(st.sampled_from("abcd"), st.booleans()), max_size=30)


@given(events)
def test_compaction_keeps_the_same_holder(history: list[tuple[str, bool]]) -> None:
    """Kafka keeps only each key's latest record (with its offset): the holder is unchanged."""
    full = ShardClaims()
    latest: dict[str, tuple[int, bool]] = {}
    for offset, (worker, claimed) in enumerate(history):
        full.apply(worker, offset, claimed)
        latest[worker] = (offset, claimed)
    compacted = ShardClaims()
    for worker, (offset, claimed) in sorted(latest.items(), key=lambda item: item[1][0]):
        compacted.apply(worker, offset, claimed)
    assert compacted.holder == full.holder
    assert compacted.claimants() == full.claimants()


def test_keys_round_trip_and_bad_keys_are_errors() -> None:
    assert parse_key(claim_key("spot-003", "worker-1")) == ("spot-003", "worker-1")
    assert b"worker-1" in claim_value("spot-003", "worker-1", 5)
    for bad in (None, b"", b"spot-003", b"|w", b"s|"):
        with pytest.raises(ControlError):
            parse_key(bad)
