"""What a worker's configuration lays out, as one value: shards, control partitions, topics.

A :class:`Topology` is the shard plan (which follows ``exchangeInfo``) and the configured
accounts, read together: the control-partition layout (the plan's shards in order, then one
partition per account, since one worker owns an account's stream so that two never fight over
its listen key), the fingerprint workers compare before sharing shards, the weights the leader
balances, and the topics the configuration writes to. Pure: no I/O, no clock; a new listing makes
a new value (:meth:`with_plan`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace

from gateway import topic_catalogue
from gateway.accounts.settings import AccountSettings
from gateway.coordination.plan import Shard, ShardPlan
from gateway.settings import GatewaySettings
from gateway.topic_catalogue import ACCOUNT_KIND, TopicSpec

ACCOUNT_WEIGHT = 1.0
"""An account's expected events per second, for balancing: a busy trading account's rate."""


@dataclass(frozen=True, slots=True)
class Topology:
    """The plan's shards and the accounts, in control-partition order, and their topics."""

    plan: ShardPlan
    accounts: Mapping[str, AccountSettings] = field(default_factory=dict)
    """Account shard id → its settings, in configuration order."""
    data_topics: tuple[TopicSpec, ...] = ()
    """Every data topic of the configuration (:func:`gateway.topic_catalogue.data_topics`)."""

    @classmethod
    def of(cls, settings: GatewaySettings, plan: ShardPlan) -> Topology:
        return cls(
            plan,
            {a.shard_id: a for a in settings.accounts},
            tuple(topic_catalogue.data_topics(settings)),
        )

    def with_plan(self, plan: ShardPlan) -> Topology:
        """The same accounts and topics under a new plan (a listing, a delisting)."""
        return replace(self, plan=plan)

    @property
    def layout(self) -> tuple[str, ...]:
        """Every shard id in control-partition order: the plan's, then the accounts'."""
        return self.plan.ids + tuple(self.accounts)

    @property
    def fingerprint(self) -> str:
        """A hash of the layout: workers whose fingerprints differ run different configurations."""
        return hashlib.blake2b("\n".join(self.layout).encode(), digest_size=8).hexdigest()

    def weights(self) -> dict[int, float]:
        """Control partition → expected events per second, what the assignor balances."""
        weights = {index: shard.weight for index, shard in enumerate(self.plan.shards)}
        for index in range(len(self.plan.shards), len(self.layout)):
            weights[index] = ACCOUNT_WEIGHT
        return weights

    def account(self, shard_id: str) -> AccountSettings | None:
        """The account streamed as ``shard_id``; ``None`` for a market shard."""
        return self.accounts.get(shard_id)

    def shard(self, shard_id: str) -> Shard:
        """The market shard called ``shard_id`` (KeyError for an account or an unknown id)."""
        return self.plan.shard(shard_id)

    def partition(self, shard_id: str) -> int:
        """The control partition of ``shard_id`` (ValueError when the layout has no such id)."""
        return self.layout.index(shard_id)

    def shards_at(self, partitions: Iterable[int]) -> list[str]:
        """The shard ids of ``partitions`` in partition order; partitions past the layout (a
        control topic grown for a larger configuration) hold nothing here."""
        layout = self.layout
        return [layout[p] for p in sorted(partitions) if 0 <= p < len(layout)]

    def partitions_of(self, shard_ids: Collection[str]) -> list[int]:
        """The control partitions of ``shard_ids`` that this layout knows, sorted."""
        layout = self.layout
        return sorted(layout.index(s) for s in shard_ids if s in layout)

    def topics(self) -> list[str]:
        """Every public topic this configuration may write to: each public event kind of each
        configured market (a stream can carry more than one kind), and the gateway's own."""
        return [t.name for t in self.data_topics if t.kind != ACCOUNT_KIND]

    def all_topics(self) -> list[str]:
        """:meth:`topics` and the accounts' own topics."""
        return [t.name for t in self.data_topics]
