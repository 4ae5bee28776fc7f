"""The control topic: who may stream each shard, decided by the order of claims in Kafka, pure.

Partition *i* of the control topic stands for shard *i* of the plan. The group protocol says
which worker *should* stream a shard; the partition's records say who *does*. A worker about to
start a shard appends a claim (key ``<shard>|<worker>``) and starts only once its claim is the
oldest standing one; when it stops the shard, after Kafka acknowledged everything it read, it
writes a tombstone for its key. So when a rebalance moves a shard between two live workers, the
new owner's claim queues behind the old owner's, and it starts the moment the old owner has let
go and flushed: no shard is streamed twice, and the new owner resumes exactly where Kafka ends.

The topic is compacted: the latest record per key survives, with its offset, so the standing
claims and their order can always be rebuilt from the topic. A claim left by a worker that
crashed (no longer in the group) is retired by whoever the group gives the shard to next.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from gateway.errors import ControlError as ControlError  # re-exported: defined in the tree


def claim_key(shard: str, worker: str) -> bytes:
    return f"{shard}|{worker}".encode()


def claim_value(shard: str, worker: str, time_ms: int) -> bytes:
    return orjson.dumps({"shard": shard, "worker": worker, "time_ms": time_ms})


def parse_key(key: bytes | None) -> tuple[str, str]:
    """``(shard, worker)`` of a control record's key."""
    shard, sep, worker = (key or b"").decode(errors="replace").partition("|")
    if not sep or not shard or not worker:
        raise ControlError(f"unreadable control record key {key!r}")
    return shard, worker


@dataclass(slots=True)
class ShardClaims:
    """The standing claims on one shard, rebuilt from its partition in offset order."""

    offsets: dict[str, int] = field(default_factory=dict)
    """worker → offset of its latest claim, for workers whose latest record is a claim."""

    def apply(self, worker: str, offset: int, claimed: bool) -> None:
        """One record of the partition: a claim, or a tombstone (``claimed=False``)."""
        self.offsets.pop(worker, None)  # a new claim queues at the back
        if claimed:
            self.offsets[worker] = offset

    @property
    def holder(self) -> str | None:
        """The worker allowed to stream the shard: the oldest standing claim."""
        if not self.offsets:
            return None
        return min(self.offsets, key=self.offsets.__getitem__)

    def claimants(self) -> list[str]:
        return sorted(self.offsets, key=self.offsets.__getitem__)
