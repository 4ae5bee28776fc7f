"""Which worker streams which shard: a sticky, load-balanced assignment, pure.

Kafka's group protocol elects a leader among the workers and asks it to assign the control
topic's partitions (one per shard) to the members; this module is what the leader computes.
Each member reports the shards it currently streams. The leader:

1. gives every member whose plan differs from its own (another configuration) nothing, so two
   layouts never share one group;
2. lets each member keep every shard it streams, and hands the shards nobody streams (new, or a
   dead member's) out heaviest first, each to the least-loaded member;
3. then, while the heaviest member holds a shard lighter than its lead over the lightest
   member, moves the largest such shard across. Every move lowers the spread, so this ends;
   at the end the spread is below the lightest shard that could move, and running the
   assignment again over its own result moves nothing.

Who actually streams a shard during a move is settled on the control topic
(:mod:`gateway.coordination.control`): the receiver starts once the previous owner let go.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MIN_WEIGHT = 0.01
"""An empty shard still counts a little, so empty shards spread out too."""


@dataclass(frozen=True, slots=True)
class MemberState:
    """What a member told the leader when it joined."""

    member_id: str
    worker: str
    owned: frozenset[int]
    fingerprint: str


def assign(
    partitions: Sequence[int],
    weights: Mapping[int, float],
    members: Sequence[MemberState],
    fingerprint: str,
) -> dict[str, frozenset[int]]:
    """Assign every partition to exactly one member whose plan matches ``fingerprint``."""
    eligible = sorted(
        (m for m in members if m.fingerprint == fingerprint), key=lambda m: (m.worker, m.member_id)
    )
    result: dict[str, set[int]] = {m.member_id: set() for m in members}
    if not eligible:
        return {member_id: frozenset() for member_id in result}

    def weight(partition: int) -> float:
        return max(weights.get(partition, 0.0), MIN_WEIGHT)

    valid = set(partitions)
    holder: dict[int, str] = {}
    for m in eligible:
        for partition in sorted(m.owned & valid):
            holder.setdefault(partition, m.member_id)  # claimed twice: the first keeps it
    for partition, member_id in holder.items():
        result[member_id].add(partition)
    load = {m.member_id: sum(weight(p) for p in result[m.member_id]) for m in eligible}
    order = {m.member_id: i for i, m in enumerate(eligible)}

    def lightest() -> str:
        return min(load, key=lambda member_id: (load[member_id], order[member_id]))

    def heaviest() -> str:
        return max(load, key=lambda member_id: (load[member_id], -order[member_id]))

    for partition in sorted(valid - holder.keys(), key=lambda p: (-weight(p), p)):
        target = lightest()
        result[target].add(partition)
        load[target] += weight(partition)

    while True:
        source, target = heaviest(), lightest()
        lead = load[source] - load[target]
        movable = [p for p in result[source] if weight(p) < lead - 1e-9]
        if not movable:
            break
        partition = max(movable, key=lambda p: (weight(p), -p))
        result[source].remove(partition)
        result[target].add(partition)
        load[source] -= weight(partition)
        load[target] += weight(partition)

    return {member_id: frozenset(assigned) for member_id, assigned in result.items()}
