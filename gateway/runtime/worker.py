"""A gateway worker: the shards it is given, the shared Kafka sink, start-up and a clean drain.

Start-up order: schemas (registered when a registry is configured), topics, the producer, the
shard plan (the configuration plus each market's ``exchangeInfo``), then the group: the worker
joins the control topic's consumer group and streams the shards the leader assigns it
(:mod:`gateway.runtime.ownership`). With coordination off it streams every shard of the plan.

Stopping (SIGTERM or the ``stop`` event) is a drain: stop reading, wait until Kafka acknowledged
everything read, let go of the shards' claims, leave the group, close the producer. The workers
that take the shards over then resume exactly where Kafka ends.

The pieces, each in its module: :class:`~gateway.runtime.topology.Topology` (the layout, as a
value), :class:`~gateway.runtime.units.UnitFactory` (what taking a shard opens),
:class:`~gateway.runtime.membership.Membership` (claims and group),
:class:`~gateway.runtime.observer.WorkerObserver` (metrics), and the Kafka and REST clients
behind the Protocols of :mod:`gateway.runtime.edges`. :class:`Gateway` composes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time

from gateway import topic_catalogue
from gateway.adapters.binance_rest import BinanceRestClient
from gateway.adapters.binance_ws import BinanceStreamClient
from gateway.adapters.decoder import ValueDecoder
from gateway.adapters.http_status import StatusServer
from gateway.adapters.kafka import AckListener
from gateway.adapters.registry import SchemaRegistryClient, prepare_catalog
from gateway.binance.markets import Market
from gateway.binance.policy import RestPriority, SlidingWindowLimit
from gateway.binance.rest_payloads import parse_trade_rates, ticker_24h_call
from gateway.coordination.fencing import Lease
from gateway.coordination.plan import ShardPlan, build_plan, diff
from gateway.errors import GatewayError
from gateway.metrics import Metrics
from gateway.records.avro import ConfluentFraming, Framing, SchemaCatalog, SingleObjectFraming
from gateway.records.builder import RecordBuilder
from gateway.records.topics import TopicNamer
from gateway.runtime.edges import Control, Group, Kafka, KafkaClients, LastIds, RestClients, Sink
from gateway.runtime.klines import KlineRecovery
from gateway.runtime.liveness import LivenessMonitor, recovered_elsewhere
from gateway.runtime.membership import Membership
from gateway.runtime.observer import WorkerObserver
from gateway.runtime.ownership import Ownership
from gateway.runtime.pipeline import FrameLimits
from gateway.runtime.shards import (
    MarketKeepers,
    ShardContext,
    ShardRunner,
    StreamClient,
    StreamClientFactory,
)
from gateway.runtime.topology import Topology
from gateway.runtime.units import AccountUnit, Markets, UnitFactory, open_markets
from gateway.settings import GatewaySettings

logger = logging.getLogger(__name__)

__all__ = ["AccountUnit", "Gateway"]

CANCELLED_DRAIN_S = 5.0
ACTIVITY_POLL_S = 3_600.0
"""How often each market's 24 h trade counts are fetched as the liveness activity prior."""


class Gateway:
    """Streams this worker's share of the configured markets into Kafka until stopped.

    Its collaborators are passed in, with production defaults: ``kafka`` (every Kafka client:
    the sink, the resume reads, the control topic, the group), ``rest_clients`` (a market's REST
    client) and ``connect`` (a shard's WebSocket connection).
    """

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        catalog: SchemaCatalog | None = None,
        on_ack: AckListener | None = None,
        kafka: Kafka | None = None,
        rest_clients: RestClients = BinanceRestClient,
        connect: StreamClientFactory = BinanceStreamClient,
    ) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.catalog = catalog or SchemaCatalog.load()
        self.namer = TopicNamer(settings.kafka.topic_prefix)
        self.observer = WorkerObserver(self.metrics, settings.binance.markets, on_ack)
        self._kafka = kafka or KafkaClients(settings.kafka)
        self._rest_clients = rest_clients
        self._connect = connect
        self.sink: Sink = self._kafka.sink(self.observer.acknowledged, self.observer.producer_error)
        self.lease = self._lease()
        """The group membership as a lease: no record leaves once it may be another's shard's."""
        self.observer.sink(lambda: self.sink.queue_depth, lambda: len(self.held_back()))
        self.topology = Topology.of(settings, build_plan(settings.binance))
        self.markets = Markets({}, {})
        self.status_server: StatusServer | None = None
        self.ownership: Ownership | None = None
        self.tail: LastIds | None = None
        """Kafka's last trade ids, read when shards start (one scan serves shards started together)."""
        self.membership = (
            Membership(settings, self._kafka, lambda: self.topology, self.metrics, self.lease)
            if settings.coordination.enabled
            else None
        )
        self.liveness: LivenessMonitor | None = None
        self.draining = False
        self.started = asyncio.Event()
        """Set once schemas, topics, the producer and the plan are ready and shards may start."""

    @property
    def worker_id(self) -> str:
        return self.settings.gateway_id

    @property
    def control_topic(self) -> str:
        return topic_catalogue.control_topic(self.settings)

    @property
    def group(self) -> Group | None:
        return self.membership.group if self.membership else None

    @property
    def plan(self) -> ShardPlan:
        return self.topology.plan

    @property
    def keepers(self) -> dict[Market, MarketKeepers]:
        return dict(self.markets.keepers)

    def layout(self) -> tuple[str, ...]:
        """Every shard id in control-partition order (:attr:`Topology.layout`)."""
        return self.topology.layout

    def fingerprint(self) -> str:
        return self.topology.fingerprint

    def topics(self) -> list[str]:
        """Every public topic this configuration may write to (:meth:`Topology.topics`)."""
        return self.topology.topics()

    def all_topics(self) -> list[str]:
        """:meth:`topics` and the accounts' own topics."""
        return self.topology.all_topics()

    @property
    def connections(self) -> list[StreamClient]:
        """Every WebSocket client of the shards streaming now (for tests and health)."""
        units = self.ownership.units.values() if self.ownership else ()
        return [c for u in units if isinstance(u, ShardRunner) for c in u.clients.values()]

    @property
    def reconnects(self) -> float:
        """WebSocket reconnects since start, every market and shard (kept after a stop)."""
        return self.observer.reconnects()

    def held_back(self) -> dict[str, float]:
        """Symbols whose live trades wait behind a hole for longer than held_back_report_s."""
        return self.markets.held_back()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until ``stop`` is set or something fatal happens; always drains."""
        async with contextlib.AsyncExitStack() as resources:
            builder, decoder = await self._records(resources)
            await self.sink.start()
            try:
                ownership = await self._compose(builder, decoder, resources)
                await self._serve(ownership, stop or asyncio.Event())
            finally:
                self.draining = True
                await self.sink.stop()
                stats = self.sink.stats
                logger.info(
                    "stopped: %d records acknowledged, %d failed", stats.acked, stats.failed
                )

    async def _compose(
        self, builder: RecordBuilder, decoder: ValueDecoder, resources: contextlib.AsyncExitStack
    ) -> Ownership:
        """Markets, resume reads, the plan, units, claims, ownership, status: in that order."""
        binance = self.settings.binance
        self.markets = await open_markets(
            binance, builder, self.sink, self.metrics, self._rest_clients, resources
        )
        self.observer.markets(self.markets.rest)
        self.tail = await resources.enter_async_context(self._kafka.last_ids(self.namer, decoder))
        self._replan(build_plan(binance, await self.markets.listings()))
        context = self._shard_context(builder)
        units = UnitFactory(
            lambda: self.topology,
            context,
            self.tail,
            self.namer,
            self.markets.rest,
            inherits=lambda shard_id: (
                self.ownership is not None and self.ownership.inherits(shard_id)
            ),
        )
        control = await self.membership.open(resources) if self.membership else None
        self.ownership = self._ownership(units, control)
        await self._serve_status(resources)
        return self.ownership

    def _ownership(self, units: UnitFactory, control: Control | None) -> Ownership:
        ownership = Ownership(
            lambda: self.topology.layout,
            units.open,
            units.close,
            self.sink.flush,
            control=control,
            live_workers=self.membership.live_workers if self.membership else frozenset,
            warn_after_s=self.settings.coordination.handover_warning_s,
        )
        self.observer.ownership(ownership)
        return ownership

    def _shard_context(self, builder: RecordBuilder) -> ShardContext:
        binance, kafka = self.settings.binance, self.settings.kafka
        liveness = self.liveness = LivenessMonitor(
            binance,
            builder,
            self.sink,
            self.metrics,
            recovered=functools.partial(recovered_elsewhere, binance),
            held=lambda: self.sink.kafka_unavailable,
            klines=KlineRecovery(
                # Klines are recovered where trades are backfilled (the same switch).
                {m: rest for m, rest in self.markets.rest.items() if binance.markets[m].backfill},
                builder,
                self.sink,
                self.metrics,
                give_up_s=binance.backfill_give_up_s,
            ),
        )
        return ShardContext(
            binance,
            self.settings.coordination,
            builder,
            self.sink,
            self.metrics,
            self.markets.keepers,
            SlidingWindowLimit(
                binance.max_connection_attempts, binance.connection_attempt_window_s
            ),
            FrameLimits(
                max_record_bytes=kafka.max_record_bytes,
                max_event_time_skew_s=binance.max_event_time_skew_s,
            ),
            liveness,
            connect=self._connect,
        )

    async def _serve(self, ownership: Ownership, stop: asyncio.Event) -> None:
        """Stream the shards this worker is given until stopped or failed; then drain."""
        assert self.liveness is not None
        background = [
            asyncio.create_task(ownership.run(), name="ownership"),
            asyncio.create_task(self._follow_listings(), name="plan-follower"),
            asyncio.create_task(self.liveness.run(), name="liveness"),
            asyncio.create_task(self._feed_activity(self.liveness), name="activity-prior"),
            asyncio.create_task(stop.wait(), name="stop-signal"),
        ]
        try:
            if self.membership is None:
                ownership.want(self.layout())
            else:
                background.append(await self.membership.join(ownership))
            self.started.set()
            done, _ = await asyncio.wait(background, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.get_name() != "stop-signal":
                    task.result()  # ended without being asked to: surface why
                    raise GatewayError(f"{task.get_name()} ended unexpectedly")
        finally:
            self.draining = True
            # The membership stays until the claims are withdrawn (see _drain); the rest stop
            # now. Their failures were surfaced above; a drain must not be skipped for them.
            others = [t for t in background if self.group is None or t is not self.group.poller]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                # Cancelled from outside (not a stop): the event loop may be shutting down and
                # Kafka's clients with it, so the drain gets a moment, not a wait.
                with contextlib.suppress(TimeoutError, GatewayError):
                    async with asyncio.timeout(CANCELLED_DRAIN_S):
                        await self._drain(ownership)
            else:
                await self._drain(ownership)

    async def _drain(self, ownership: Ownership) -> None:
        try:
            await ownership.release_all()
            if self.liveness is not None:
                await self.liveness.flush()  # the released streams' open windows
                await self.sink.flush()
        finally:
            if self.membership is not None:
                await self.membership.leave()  # after the releases: the others may start at once
            await self.markets.stop()

    async def _feed_activity(self, liveness: LivenessMonitor) -> None:
        """Each market's 24 h trade counts as the prior of its trade streams' liveness, so a
        quiet symbol's stream is judged by its own pace from the start (not only after
        ``max_quiet_s``) and a busy one's silence is caught before it showed 50 trades. At the
        lowest REST priority: a hint, never worth delaying a backfill."""
        while True:
            for market, rest in self.markets.rest.items():
                call = ticker_24h_call(market)
                try:
                    body = await rest.get(
                        call.path, call.params, weight=call.weight, priority=RestPriority.PROBE
                    )
                    rates = parse_trade_rates(body)
                except GatewayError as exc:
                    logger.warning("%s 24 h ticker unavailable (%s)", market.value, exc)
                    continue
                liveness.set_activity(market, rates)
            await asyncio.sleep(ACTIVITY_POLL_S)

    async def _follow_listings(self) -> None:
        """Re-plan every ``exchange_info_poll_s``: new listings start, delistings stop."""
        while True:
            await asyncio.sleep(self.settings.binance.exchange_info_poll_s)
            listings = await self.markets.listings()
            if not listings:
                continue
            new = build_plan(self.settings.binance, listings)
            changes = diff(self.plan, new)
            if not changes:
                continue
            self._replan(new)
            logger.info(
                "listings changed %d shards",
                len(changes),
                extra={"event_data": {"shards": sorted(changes)}},
            )
            for shard_id in changes:
                unit = self.ownership.units.get(shard_id) if self.ownership else None
                if isinstance(unit, ShardRunner):
                    unit.update(new.shard(shard_id))

    def _replan(self, plan: ShardPlan) -> None:
        self.topology = self.topology.with_plan(plan)
        self.observer.plan(plan)

    def readiness(self) -> tuple[bool, dict[str, object]]:
        """Ready: in the group (when coordinated), every held shard streaming, not draining.
        A worker holding no shard (a standby) is ready too."""
        ownership = self.ownership
        in_group = self.group is None or self.group.assigned is not None
        streaming = ownership is not None and ownership.streaming
        ready = self.started.is_set() and not self.draining and in_group and streaming
        details: dict[str, object] = {
            "worker": self.worker_id,
            "draining": self.draining,
            "in_group": in_group,
            "shards": ownership.health() if ownership else {},
            "silent_streams": self.liveness.silent() if self.liveness else {},
            "kafka_queue_depth": self.sink.queue_depth,
            "records_acked": self.sink.stats.acked,
            "records_failed": self.sink.stats.failed,
            "records_refused": self.sink.stats.refused,
            "held_back": self.held_back(),
            "not_streamed": [f"{m.value} {symbol}" for m, symbol in self.plan.not_trading],
        }
        return ready, details

    async def _serve_status(self, resources: contextlib.AsyncExitStack) -> None:
        status = self.settings.status
        if not status.enabled:
            return
        server = self.status_server = StatusServer(
            self.metrics.registry, self.readiness, status.host, status.port
        )
        await server.start()
        resources.push_async_callback(server.stop)

    async def _records(
        self, resources: contextlib.AsyncExitStack
    ) -> tuple[RecordBuilder, ValueDecoder]:
        """Schemas (registered when a registry is configured), the builder, the data topics."""
        settings = self.settings
        registry = None
        if settings.registry.url is not None:
            registry = await resources.enter_async_context(
                SchemaRegistryClient.from_settings(settings.registry)
            )
        builder = RecordBuilder(
            self.catalog, await self._framing(registry), self.namer, self.worker_id
        )
        self.sink.route_refusals(builder.refused)
        if settings.kafka.create_topics:
            await self._kafka.ensure_topics(self.topology.data_topics)
        return builder, ValueDecoder(self.catalog, registry)

    async def _framing(self, registry: SchemaRegistryClient | None) -> Framing:
        if registry is None:
            return SingleObjectFraming()
        ids = await prepare_catalog(
            registry,
            self.catalog,
            self.namer,
            manage_compatibility=self.settings.registry.manage_compatibility,
            register=self.settings.registry.registration,
        )
        return ConfluentFraming(ids)

    def _lease(self) -> Lease | None:
        if not self.settings.coordination.enabled:
            return None
        c = self.settings.coordination
        # Lapses one heartbeat interval before the broker could expel this worker.
        margin_ms = min(c.heartbeat_interval_ms, c.session_timeout_ms // 2)
        lease = Lease(c.session_timeout_ms / 1000, margin_ms / 1000)
        self.sink.fence_with(lambda: lease.verdict(time.monotonic()))
        return lease
