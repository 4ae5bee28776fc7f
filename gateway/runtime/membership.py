"""A coordinated worker's place among the others: its claims and its group membership.

Opening follows the control topic (created or grown to one partition per shard of the
:class:`~gateway.runtime.topology.Topology`) and withdraws the claims an earlier run of this worker
left; joining the group hands each assignment to :class:`~gateway.runtime.ownership.Ownership`
as shard ids; leaving comes last in a drain, after the claims were let go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from gateway import topic_catalogue
from gateway.adapters.kafka_group import ShardAssignor
from gateway.coordination.fencing import Lease
from gateway.metrics import Metrics
from gateway.runtime.edges import Control, Group, Kafka
from gateway.runtime.ownership import Ownership
from gateway.runtime.topology import Topology
from gateway.settings import GatewaySettings

logger = logging.getLogger(__name__)


class Membership:
    """The control topic, the assignor and the group of one coordinated worker."""

    def __init__(
        self,
        settings: GatewaySettings,
        kafka: Kafka,
        topology: Callable[[], Topology],
        metrics: Metrics,
        lease: Lease | None,
    ) -> None:
        self._settings = settings
        self._kafka = kafka
        self._topology = topology
        self._metrics = metrics
        self._lease = lease
        self._ownership: Ownership | None = None
        self.worker = settings.gateway_id
        self.topic = topic_catalogue.control_topic(settings)
        self.assignor = ShardAssignor(self.topic, self.worker, self._owned, self._plan_view)
        self.group: Group | None = None

    async def open(self, resources: contextlib.AsyncExitStack) -> Control:
        """Follow the control topic (until ``resources`` close) with no stale claim of ours."""
        settings = self._settings
        spec = topic_catalogue.control_spec(settings, len(self._topology().layout))
        control = await self._kafka.control(spec, self.worker, create=settings.kafka.create_topics)
        resources.push_async_callback(control.stop)
        layout = self._topology().layout
        for partition in control.partitions:
            # A restarted worker holds nothing: withdraw claims an earlier run of it left.
            if partition < len(layout) and self.worker in control.claimants(partition):
                await control.release(partition, layout[partition])
        return control

    def live_workers(self) -> frozenset[str]:
        """Every worker of the latest generation, as the leader saw them."""
        return self.assignor.live_workers

    async def join(self, ownership: Ownership) -> asyncio.Task[None]:
        """Join the group; each assignment becomes the shards ``ownership`` wants. Returns the
        membership's task (it ends only by failing)."""
        self._ownership = ownership
        settings = self._settings
        self.group = self._kafka.group(
            settings.coordination,
            self.topic,
            topic_catalogue.workers_group(settings),
            self.assignor,
            self._assigned,
            self._lease,
        )
        await self.group.start()
        assert self.group.poller is not None
        return self.group.poller

    async def leave(self) -> None:
        """Leave the group: the others take this worker's shards at once."""
        if self.group is not None:
            await self.group.stop()

    def _assigned(self, partitions: frozenset[int]) -> None:
        assert self._ownership is not None
        self._metrics.rebalances.inc()
        shards = self._topology().shards_at(partitions)
        logger.info(
            "group assignment: %d shards",
            len(shards),
            extra={"event_data": {"worker": self.worker, "shards": shards}},
        )
        self._ownership.want(shards)

    def _owned(self) -> list[int]:
        owned = self._ownership.owned() if self._ownership else frozenset()
        return self._topology().partitions_of(owned)

    def _plan_view(self) -> tuple[str, dict[int, float]]:
        topology = self._topology()
        return topology.fingerprint, topology.weights()
