"""Kafka's group protocol as the shard coordinator: the assignor, the membership, the claims.

* :class:`ShardAssignor` plugs :func:`gateway.coordination.assignor.assign` into aiokafka: each
  member's join metadata carries its worker name, the shards it streams and its plan's
  fingerprint; the leader's assignment carries the names of the live workers.
* :class:`ShardGroup` is the membership: a consumer of the control topic that never reads it
  (its partitions stay paused) and only joins, heartbeats and receives assignments. A worker
  that stops heartbeating loses its shards after ``session_timeout_ms``.
* :class:`ControlLog` follows every partition of the control topic and writes this worker's
  claims (:mod:`gateway.coordination.control`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)
from aiokafka.errors import InvalidPartitionsError
from aiokafka.structs import TopicPartition

from gateway.adapters.kafka import map_kafka_errors
from gateway.adapters.kafka_security import client_options
from gateway.coordination.assignor import MemberState, assign
from gateway.coordination.control import (
    ControlError,
    ShardClaims,
    claim_key,
    claim_value,
    parse_key,
)
from gateway.coordination.fencing import Lease, LeaseState
from gateway.errors import ConfigError, KafkaDeliveryError
from gateway.logs import soften_transient_coordinator_errors
from gateway.settings import CoordinationSettings, KafkaSettings
from gateway.topic_catalogue import TopicRole, TopicSpec

logger = logging.getLogger(__name__)
soften_transient_coordinator_errors()  # see gateway.logs: a fresh broker's first lookups

TOPIC_ALREADY_EXISTS = 36
LEAVE_TIMEOUT_S = 10.0

PlanView = Callable[[], tuple[str, Mapping[int, float]]]
"""The current plan as the leader needs it: its fingerprint and each partition's weight."""


class ShardAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
    """The group leader's side of the assignment; an instance per worker (it has state)."""

    name = "binance-gateway-shards"
    version = 0

    def __init__(
        self, topic: str, worker: str, owned: Callable[[], Collection[int]], plan: PlanView
    ) -> None:
        self._topic = topic
        self._worker = worker
        self._owned = owned
        self._plan = plan
        self.live_workers: frozenset[str] = frozenset()
        """Every worker of the latest generation, as the leader saw them."""

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        fingerprint, _ = self._plan()
        user_data = {"worker": self._worker, "owned": sorted(self._owned()), "plan": fingerprint}
        return ConsumerProtocolMemberMetadata(self.version, sorted(topics), orjson.dumps(user_data))

    def assign(
        self, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        fingerprint, weights = self._plan()
        states = [_member_state(member_id, meta) for member_id, meta in members.items()]
        for state in states:
            if state.fingerprint != fingerprint:
                logger.error(
                    "worker %s runs another shard plan (%s, leader %s): it gets no shards until "
                    "its configuration matches the group's",
                    state.worker,
                    state.fingerprint,
                    fingerprint,
                )
        partitions = sorted(cluster.partitions_for_topic(self._topic) or ())
        result = assign(partitions, weights, states, fingerprint)
        live = orjson.dumps({"live": sorted({s.worker for s in states})})
        logger.info(
            "assigned %d shards to %d workers",
            len(partitions),
            len(states),
            extra={"event_data": {s.worker: sorted(result[s.member_id]) for s in states}},
        )
        return {
            member_id: ConsumerProtocolMemberAssignment(
                self.version, [(self._topic, sorted(parts))], live
            )
            for member_id, parts in result.items()
        }

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:
        try:
            self.live_workers = frozenset(orjson.loads(assignment.user_data)["live"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.live_workers = frozenset()


def _member_state(member_id: str, meta: ConsumerProtocolMemberMetadata) -> MemberState:
    try:
        data = orjson.loads(meta.user_data)
        return MemberState(
            member_id, str(data["worker"]), frozenset(map(int, data["owned"])), str(data["plan"])
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        # Not one of ours (another client in the group): it gets nothing.
        return MemberState(member_id, member_id, frozenset(), "")


class ShardGroup:
    """This worker's membership in the group; calls ``on_change`` with each new assignment."""

    def __init__(
        self,
        kafka: KafkaSettings,
        coordination: CoordinationSettings,
        topic: str,
        group_id: str,
        assignor: ShardAssignor,
        on_change: Callable[[frozenset[int]], None],
        lease: Lease | None = None,
    ) -> None:
        self._kafka = kafka
        self._lease = lease
        self._coordination = coordination
        self._topic = topic
        self._group_id = group_id
        self._assignor = assignor
        self._on_change = on_change
        self._consumer: AIOKafkaConsumer | None = None
        self._poller: asyncio.Task[None] | None = None
        self.assigned: frozenset[int] | None = None
        """The partitions of the latest assignment; None until the first one."""

    async def start(self) -> None:
        k, c = self._kafka, self._coordination
        consumer = AIOKafkaConsumer(
            bootstrap_servers=k.bootstrap_servers,
            client_id=f"{k.client_id}-group",
            group_id=self._group_id,
            partition_assignment_strategy=(self._assignor,),
            session_timeout_ms=c.session_timeout_ms,
            heartbeat_interval_ms=c.heartbeat_interval_ms,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            **client_options(k.security),
        )
        consumer.subscribe([self._topic], listener=_Listener(self, consumer))
        with map_kafka_errors("joining the worker group", k.bootstrap_servers):
            await consumer.start()
        if self._lease is not None:
            _renew_on_heartbeats(consumer, self._lease)
        self._consumer = consumer
        self._poller = asyncio.create_task(self._poll(consumer), name="group-membership")

    async def stop(self) -> None:
        """Leave the group: the others take this worker's shards at once."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            try:
                async with asyncio.timeout(LEAVE_TIMEOUT_S):
                    await consumer.stop()
            except TimeoutError:
                logger.warning(
                    "leaving the group took over %.0fs; the session timeout will "
                    "hand the shards over instead",
                    LEAVE_TIMEOUT_S,
                )

    def failure(self) -> BaseException | None:
        """Why the membership ended, if it did (it only ends by failing)."""
        if self._poller is None or not self._poller.done() or self._poller.cancelled():
            return None
        return self._poller.exception()

    @property
    def poller(self) -> asyncio.Task[None] | None:
        return self._poller

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        # The partitions are paused: polling reads nothing, but aiokafka counts a member that
        # stops polling as stuck (max_poll_interval_ms) and rejoins without it.
        while True:
            await consumer.getmany(timeout_ms=1000)
            if self._lease is not None and self._lease.state is LeaseState.FENCED:
                # Held records were refused (docs/fencing.md); a fresh start resumes from Kafka.
                raise KafkaDeliveryError(
                    "this worker was expelled from the group while it could not heartbeat "
                    "(paused past the session timeout?): its shards stream elsewhere now"
                )

    def _assigned(self, partitions: frozenset[int], member: str) -> None:
        if self._lease is not None:
            self._lease.confirmed(member, time.monotonic())
        self.assigned = partitions
        self._on_change(partitions)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, group: ShardGroup, consumer: AIOKafkaConsumer) -> None:
        self._group = group
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        # Eager rebalancing revokes everything before each assignment; the shards keep
        # streaming until the new assignment says otherwise, and a moved shard's new owner
        # waits on the control topic until this worker let go of it.
        pass

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        self._consumer.pause(*assigned)
        member = str(self._consumer._coordinator.member_id)
        self._group._assigned(frozenset(tp.partition for tp in assigned), member)


def _renew_on_heartbeats(consumer: AIOKafkaConsumer, lease: Lease) -> None:
    """Confirm the lease on every heartbeat the broker accepts, from the moment it was sent.

    aiokafka has no hook for heartbeats; its coordinator's ``_do_heartbeat`` (aiokafka 0.14,
    pinned) returns whether the broker accepted one, for the member id it had when sending.
    """
    coordinator = consumer._coordinator
    heartbeat = coordinator._do_heartbeat

    async def renewing_heartbeat() -> bool:
        sent_at, member = time.monotonic(), str(coordinator.member_id)
        accepted: bool = await heartbeat()
        if accepted and member:
            lease.confirmed(member, sent_at)
        return accepted

    coordinator._do_heartbeat = renewing_heartbeat


class ControlLog:
    """The claims on every shard, followed live, and this worker's own claims and releases."""

    def __init__(self, kafka: KafkaSettings, topic: str, worker: str) -> None:
        self._kafka = kafka
        self._topic = topic
        self.worker = worker
        self._claims: dict[int, ShardClaims] = {}
        self._positions: dict[int, int] = {}
        self._changed = asyncio.Condition()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._follower: asyncio.Task[None] | None = None

    async def start(self, partitions: int) -> None:
        """Follow partitions ``0..partitions-1`` (from :func:`ensure_control_topic`)."""
        k = self._kafka
        options: dict[str, Any] = client_options(k.security)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=k.bootstrap_servers,
            client_id=f"{k.client_id}-control",
            enable_auto_commit=False,
            **options,
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=k.bootstrap_servers,
            client_id=f"{k.client_id}-control",
            acks="all",
            enable_idempotence=True,
            **options,
        )
        with map_kafka_errors("reading the control topic", k.bootstrap_servers):
            await consumer.start()
            await producer.start()
        self._consumer, self._producer = consumer, producer
        tps = [TopicPartition(self._topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        for tp in tps:
            self._claims[tp.partition] = ShardClaims()
            self._positions[tp.partition] = 0
        self._follower = asyncio.create_task(self._follow(consumer), name="control-log")
        await self.caught_up(range(partitions))

    async def stop(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        for client in (self._consumer, self._producer):
            if client is not None:
                await client.stop()
        self._consumer = self._producer = None

    @property
    def partitions(self) -> list[int]:
        return sorted(self._claims)

    def claimants(self, partition: int) -> list[str]:
        return self._claims[partition].claimants()

    def holder(self, partition: int) -> str | None:
        return self._claims[partition].holder

    async def caught_up(self, partitions: Iterable[int]) -> None:
        """Wait until everything written to ``partitions`` so far has been read."""
        assert self._consumer is not None
        tps = [TopicPartition(self._topic, p) for p in partitions]
        ends = await self._consumer.end_offsets(tps)
        async with self._changed:
            await self._changed.wait_for(
                lambda: all(self._positions[tp.partition] >= end for tp, end in ends.items())
            )

    async def claim(self, partition: int, shard: str) -> int:
        """Queue this worker's claim on a shard; returns the claim's offset."""
        return await self._write(
            partition, shard, self.worker, claim_value(shard, self.worker, _now_ms())
        )

    async def release(self, partition: int, shard: str, worker: str | None = None) -> None:
        """Withdraw a claim (this worker's, or a crashed worker's)."""
        await self._write(partition, shard, worker or self.worker, None)

    async def wait_until_holder(
        self, partition: int, after_offset: int, on_wait: Callable[[list[str]], None]
    ) -> None:
        """Wait until the log is read past ``after_offset`` and this worker holds the shard;
        ``on_wait`` is told who is ahead each time the claims change while waiting."""
        async with self._changed:
            while True:
                if self._positions[partition] > after_offset:
                    if self._claims[partition].holder == self.worker:
                        return
                    on_wait(self._claims[partition].claimants())
                await self._changed.wait()

    async def _write(self, partition: int, shard: str, worker: str, value: bytes | None) -> int:
        assert self._producer is not None
        bootstrap = self._kafka.bootstrap_servers
        try:
            async with asyncio.timeout(self._kafka.request_timeout_ms / 1000):
                with map_kafka_errors("writing to the control topic", bootstrap):
                    metadata = await self._producer.send_and_wait(
                        self._topic, value=value, key=claim_key(shard, worker), partition=partition
                    )
        except TimeoutError:
            raise KafkaDeliveryError(f"control topic {self._topic} did not take a claim") from None
        return int(metadata.offset)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            async with self._changed:
                for tp, records in batches.items():
                    for record in records:
                        self._apply(tp.partition, record.key, record.value, record.offset)
                for tp in consumer.assignment():
                    self._positions[tp.partition] = await consumer.position(tp)
                self._changed.notify_all()

    def _apply(self, partition: int, key: bytes | None, value: bytes | None, offset: int) -> None:
        try:
            _, worker = parse_key(key)
        except ControlError as exc:
            logger.error("control topic %s/%d@%d: %s", self._topic, partition, offset, exc)
            return
        self._claims[partition].apply(worker, offset, value is not None)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def ensure_control_topic(
    settings: KafkaSettings,
    topic: TopicSpec | str,
    partitions: int | None = None,
    *,
    create: bool = True,
) -> int:
    """The control topic with at least one partition per shard; returns how many it has.

    ``topic`` is the catalogue's spec (compacted); a bare name gets ``partitions`` and the
    compaction. With ``create=False`` (``kafka.create_topics: false``: the platform owns the
    topics) it is only checked: missing or too small is a :class:`ConfigError` saying so.
    """
    if isinstance(topic, str):
        spec = TopicSpec(
            topic,
            "control",
            TopicRole.INTERNAL,
            partitions or 1,
            settings.replication_factor,
            {"cleanup.policy": "compact"},
        )
    else:
        spec = topic
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.client_id}-admin",
        request_timeout_ms=settings.request_timeout_ms,
        **client_options(settings.security),
    )
    with map_kafka_errors("creating the control topic", settings.bootstrap_servers):
        await admin.start()
        try:
            if not create:
                return await _check_control_topic(admin, spec)
            response = await admin.create_topics(
                [NewTopic(spec.name, spec.partitions, spec.replicas, topic_configs=spec.config)]
            )
            code = response.topic_errors[0][1]
            if code == 0:
                await _wait_for_leaders(admin, spec.name, spec.partitions)
            if code == TOPIC_ALREADY_EXISTS:
                described = await admin.describe_topics([spec.name])
                existing = len(described[0]["partitions"])
                if existing < spec.partitions:
                    # More shards than before (more slots or accounts): grow, never shrink.
                    try:
                        await admin.create_partitions({spec.name: NewPartitions(spec.partitions)})
                        logger.info(
                            "control topic %s grown to %d partitions", spec.name, spec.partitions
                        )
                    except InvalidPartitionsError:
                        pass  # another worker starting at the same moment created or grew it
                return max(existing, spec.partitions)
            if code != 0:
                raise KafkaDeliveryError(f"cannot create control topic {spec.name}: error {code}")
            return spec.partitions
        finally:
            await admin.close()


async def _check_control_topic(admin: AIOKafkaAdminClient, spec: TopicSpec) -> int:
    """The platform's control topic: it must exist with a partition per shard."""
    [described] = await admin.describe_topics([spec.name])
    existing = len(described.get("partitions", []))
    if described.get("error_code", 0) != 0 or existing == 0:
        raise ConfigError(
            f"control topic {spec.name} does not exist and kafka.create_topics is false: "
            "create it (gateway topics --strimzi) or let the gateway create topics"
        )
    if existing < spec.partitions:
        raise ConfigError(
            f"control topic {spec.name} has {existing} partitions, the plan needs "
            f"{spec.partitions} (one per shard): regenerate the topics (gateway topics --strimzi)"
        )
    return existing


async def _wait_for_leaders(admin: AIOKafkaAdminClient, topic: str, partitions: int) -> None:
    """A topic created a moment ago has no leaders yet; clients that use it before then
    log an error per retry. Wait (briefly) until every partition has one."""
    for _ in range(100):
        described = await admin.describe_topics([topic])
        leaders = [p.get("leader", -1) for p in described[0].get("partitions", [])]
        if len(leaders) >= partitions and all(leader >= 0 for leader in leaders):
            return
        await asyncio.sleep(0.1)
