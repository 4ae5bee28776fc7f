"""A gateway worker: the shards it is given, the shared Kafka sink, start-up and a clean drain.

Start-up order: schemas (registered when a registry is configured), topics, the producer, the
shard plan (the configuration plus each market's ``exchangeInfo``), then the group: the worker
joins the control topic's consumer group and streams the shards the leader assigns it
(:mod:`gateway.ownership`). With coordination off it streams every shard of the plan.

Stopping (SIGTERM or the ``stop`` event) is a drain: stop reading, wait until Kafka acknowledged
everything read, let go of the shards' claims, leave the group, close the producer. The workers
that take the shards over then resume exactly where Kafka ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import time
from collections.abc import Mapping

from gateway import topic_catalogue
from gateway.accounts.settings import AccountSettings
from gateway.accounts.stream import AccountStream
from gateway.adapters.binance_rest import BinanceRestClient
from gateway.adapters.binance_ws import BinanceStreamClient
from gateway.adapters.decoder import ValueDecoder
from gateway.adapters.http_status import StatusServer
from gateway.adapters.kafka import AckListener, KafkaSink, ensure_topics
from gateway.adapters.kafka_group import (
    ControlLog,
    ShardAssignor,
    ShardGroup,
    ensure_control_topic,
)
from gateway.adapters.kafka_tail import LastIdReader
from gateway.adapters.registry import SchemaRegistryClient, prepare_catalog
from gateway.binance.exchange_info import ListedSymbol
from gateway.binance.markets import Market
from gateway.binance.policy import SlidingWindowLimit
from gateway.binance.sequence import IdBounds
from gateway.books import BookKeeper
from gateway.continuity import TradeContinuity
from gateway.coordination.fencing import Lease
from gateway.coordination.plan import build_plan, diff
from gateway.errors import GatewayError
from gateway.liveness import LivenessMonitor, recovered_elsewhere
from gateway.metrics import Buckets, Count, Metrics
from gateway.ownership import Ownership, Unit
from gateway.pipeline import FrameLimits
from gateway.records.avro import ConfluentFraming, Framing, SchemaCatalog, SingleObjectFraming
from gateway.records.builder import RecordBuilder
from gateway.records.topics import (
    ProducerRecord,
    TopicNamer,
)
from gateway.settings import GatewaySettings
from gateway.shards import MarketKeepers, ShardContext, ShardRunner
from gateway.topic_catalogue import ACCOUNT_KIND

logger = logging.getLogger(__name__)

TRADE_CHANNELS = {"trade", "aggTrade"}
CANCELLED_DRAIN_S = 5.0
ACCOUNT_WEIGHT = 1.0
"""An account's expected events per second, for balancing: a busy trading account's rate."""


class AccountUnit:
    """An account's user-data stream as one of the worker's shards."""

    def __init__(self, stream: AccountStream) -> None:
        self.stream = stream

    async def run(self) -> None:
        await self.stream.run()

    def health(self) -> dict[str, object]:
        return self.stream.health()

    @property
    def streaming(self) -> bool:
        """Down means blind: the worker is not ready while an account it owns is down."""
        return bool(self.stream.health()["up"])

    @property
    def failing(self) -> bool:
        return self.stream.health()["state"] == "rejected"


class Gateway:
    """Streams this worker's share of the configured markets into Kafka until stopped."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        catalog: SchemaCatalog | None = None,
        on_ack: AckListener | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.catalog = catalog or SchemaCatalog.load()
        self.namer = TopicNamer(settings.kafka.topic_prefix)
        self._on_ack = on_ack
        self.sink = KafkaSink(
            settings.kafka, on_ack=self._acknowledged, on_error=self._producer_error
        )
        self.lease: Lease | None = None
        """The group membership as a lease: no record leaves once it may be another's shard's."""
        if settings.coordination.enabled:
            c = settings.coordination
            # Lapses one heartbeat interval before the broker could expel this worker.
            margin_ms = min(c.heartbeat_interval_ms, c.session_timeout_ms // 2)
            lease = self.lease = Lease(c.session_timeout_ms / 1000, margin_ms / 1000)
            self.sink.fence_with(lambda: lease.verdict(time.monotonic()))
        self.metrics.kafka_queue_depth.set_function(lambda: self.sink.queue_depth)
        self.metrics.symbols_held_back.set_function(lambda: len(self.held_back()))
        self._ack_metrics: dict[str, tuple[Count, Buckets]] = {}
        self._ack_latency = self.metrics.ack_latency.labels()
        self.status_server: StatusServer | None = None
        self.keepers: dict[Market, MarketKeepers] = {}
        self.rest: dict[Market, BinanceRestClient] = {}
        self.plan = build_plan(settings.binance)
        self._not_trading_reported: set[tuple[Market, str]] = set()
        self.ownership: Ownership | None = None
        self.tail: LastIdReader | None = None
        """Kafka's last trade ids, read when shards start (one scan serves shards started together)."""
        self.group: ShardGroup | None = None
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

    def layout(self) -> tuple[str, ...]:
        """Every shard id in control-partition order: the plan's, then one per account (one
        worker owns an account's stream, so two never fight over its listen key)."""
        return self.plan.ids + tuple(self._accounts)

    @property
    def _accounts(self) -> dict[str, AccountSettings]:
        return {a.shard_id: a for a in self.settings.accounts}

    def fingerprint(self) -> str:
        return hashlib.blake2b("\n".join(self.layout()).encode(), digest_size=8).hexdigest()

    @property
    def connections(self) -> list[BinanceStreamClient]:
        """Every WebSocket client of the shards streaming now (for tests and health)."""
        units = self.ownership.units.values() if self.ownership else ()
        return [c for u in units if isinstance(u, ShardRunner) for c in u.clients.values()]

    @property
    def reconnects(self) -> float:
        """WebSocket reconnects since start, every market and shard (kept after a stop)."""
        return sum(
            sample.value
            for metric in self.metrics.reconnects.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )

    def topics(self) -> list[str]:
        """Every public topic this configuration may write to: each public event kind of each
        configured market (a stream can carry more than one kind), and the gateway's own."""
        return [
            t.name for t in topic_catalogue.data_topics(self.settings) if t.kind != ACCOUNT_KIND
        ]

    def all_topics(self) -> list[str]:
        """:meth:`topics` and the accounts' own topics."""
        return [t.name for t in topic_catalogue.data_topics(self.settings)]

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until ``stop`` is set or something fatal happens; always drains."""
        stop = stop or asyncio.Event()
        settings = self.settings
        async with contextlib.AsyncExitStack() as resources:
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
                await ensure_topics(settings.kafka, topic_catalogue.data_topics(settings))
            await self.sink.start()
            try:
                await self._run_with_sink(stop, builder, registry, resources)
            finally:
                self.draining = True
                await self.sink.stop()
                logger.info(
                    "stopped: %d records acknowledged, %d failed",
                    self.sink.stats.acked,
                    self.sink.stats.failed,
                )

    async def _run_with_sink(
        self,
        stop: asyncio.Event,
        builder: RecordBuilder,
        registry: SchemaRegistryClient | None,
        resources: contextlib.AsyncExitStack,
    ) -> None:
        settings = self.settings
        keepers = await self._market_keepers(builder, resources)
        tail = self.tail = await resources.enter_async_context(
            LastIdReader(settings.kafka, self.namer, ValueDecoder(self.catalog, registry))
        )
        self.plan = build_plan(settings.binance, await self._listings())
        self._observe_plan()
        liveness = self.liveness = LivenessMonitor(
            settings.binance,
            builder,
            self.sink,
            self.metrics,
            recovered=functools.partial(recovered_elsewhere, settings.binance),
            held=lambda: self.sink.kafka_unavailable,
        )
        context = ShardContext(
            settings.binance,
            settings.coordination,
            builder,
            self.sink,
            self.metrics,
            keepers,
            SlidingWindowLimit(
                settings.binance.max_connection_attempts,
                settings.binance.connection_attempt_window_s,
            ),
            FrameLimits(
                max_record_bytes=settings.kafka.max_record_bytes,
                max_event_time_skew_s=settings.binance.max_event_time_skew_s,
            ),
            liveness,
        )

        async def open_unit(shard_id: str) -> Unit:
            account = self._accounts.get(shard_id)
            if account is not None:
                rest = self.rest.get(account.market)
                return AccountUnit(
                    AccountStream(
                        account,
                        settings.binance,
                        builder,
                        self.sink,
                        self.metrics,
                        self.namer,
                        rest_budget=rest.budget if rest else None,
                    )
                )
            shard = self.plan.shard(shard_id)
            continuity = keepers[shard.market].continuity
            channels = set(settings.binance.markets[shard.market].channels)
            if continuity is not None and shard.symbols and channels & TRADE_CHANNELS:
                continuity.resume(await tail.last_ids(shard.market, shard.symbols))
            return ShardRunner(shard, context)

        def close_unit(shard_id: str) -> None:
            if shard_id in self._accounts:
                return
            shard = self.plan.shard(shard_id)
            keepers[shard.market].forget(shard.symbols)

        coordinated = settings.coordination.enabled
        control: ControlLog | None = None
        assignor: ShardAssignor | None = None
        if coordinated:
            partitions = await ensure_control_topic(
                settings.kafka,
                topic_catalogue.control_spec(settings, len(self.layout())),
                create=settings.kafka.create_topics,
            )
            control = ControlLog(settings.kafka, self.control_topic, self.worker_id)
            await control.start(partitions)
            resources.push_async_callback(control.stop)
            await self._retire_own_claims(control)
            assignor = ShardAssignor(
                self.control_topic,
                self.worker_id,
                lambda: self._owned_partitions(),
                lambda: (self.fingerprint(), self._weights()),
            )
        ownership = self.ownership = Ownership(
            self.layout,
            open_unit,
            close_unit,
            self.sink.flush,
            control=control,
            live_workers=(lambda: assignor.live_workers) if assignor else frozenset,
            warn_after_s=settings.coordination.handover_warning_s,
        )
        self._observe_ownership(ownership)
        status = self._status_server()
        if status is not None:
            await status.start()
            resources.push_async_callback(status.stop)
        background = [
            asyncio.create_task(ownership.run(), name="ownership"),
            asyncio.create_task(self._follow_listings(), name="plan-follower"),
            asyncio.create_task(liveness.run(), name="liveness"),
            asyncio.create_task(stop.wait(), name="stop-signal"),
        ]
        try:
            if assignor is not None:
                self.group = ShardGroup(
                    settings.kafka,
                    settings.coordination,
                    self.control_topic,
                    topic_catalogue.workers_group(settings),
                    assignor,
                    lambda partitions: self._assigned(ownership, partitions),
                    lease=self.lease,
                )
                await self.group.start()
                assert self.group.poller is not None
                background.append(self.group.poller)
            else:
                ownership.want(self.layout())
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
                        await self._drain(ownership, keepers)
            else:
                await self._drain(ownership, keepers)

    async def _drain(self, ownership: Ownership, keepers: Mapping[Market, MarketKeepers]) -> None:
        try:
            await ownership.release_all()
            if self.liveness is not None:
                await self.liveness.flush()  # the released streams' open windows
                await self.sink.flush()
        finally:
            if self.group is not None:
                await self.group.stop()  # after the releases: the others may start at once
            for keeper in keepers.values():
                await keeper.stop()

    def _assigned(self, ownership: Ownership, partitions: frozenset[int]) -> None:
        self.metrics.rebalances.inc()
        layout = self.layout()
        shards = [layout[p] for p in sorted(partitions) if p < len(layout)]
        logger.info(
            "group assignment: %d shards",
            len(shards),
            extra={"event_data": {"worker": self.worker_id, "shards": shards}},
        )
        ownership.want(shards)

    def _owned_partitions(self) -> list[int]:
        if self.ownership is None:
            return []
        layout = self.layout()
        return sorted(layout.index(s) for s in self.ownership.owned() if s in layout)

    def _weights(self) -> dict[int, float]:
        weights = {index: shard.weight for index, shard in enumerate(self.plan.shards)}
        for index in range(len(self.plan.shards), len(self.layout())):
            weights[index] = ACCOUNT_WEIGHT
        return weights

    async def _retire_own_claims(self, control: ControlLog) -> None:
        """A restarted worker holds nothing: withdraw claims an earlier run of it left."""
        layout = self.layout()
        for partition in control.partitions:
            if partition < len(layout) and self.worker_id in control.claimants(partition):
                await control.release(partition, layout[partition])

    async def _listings(self) -> dict[Market, tuple[ListedSymbol, ...]]:
        """Each market's exchangeInfo; a market that cannot be asked now is left out (its
        explicit symbols stream as configured; a ``select`` waits for the next poll)."""
        listings = {}
        for market, rest in self.rest.items():
            try:
                listings[market] = await rest.exchange_info()
            except GatewayError as exc:
                logger.warning(
                    "%s exchangeInfo unavailable (%s); retrying later", market.value, exc
                )
        return listings

    async def _follow_listings(self) -> None:
        """Re-plan every ``exchange_info_poll_s``: new listings start, delistings stop."""
        while True:
            await asyncio.sleep(self.settings.binance.exchange_info_poll_s)
            listings = await self._listings()
            if not listings:
                continue
            new = build_plan(self.settings.binance, listings)
            changes = diff(self.plan, new)
            if not changes:
                continue
            self.plan = new
            self._observe_plan()
            logger.info(
                "listings changed %d shards",
                len(changes),
                extra={"event_data": {"shards": sorted(changes)}},
            )
            for shard_id in changes:
                unit = self.ownership.units.get(shard_id) if self.ownership else None
                if isinstance(unit, ShardRunner):
                    unit.update(new.shard(shard_id))

    def _observe_plan(self) -> None:
        for market, symbol in self.plan.not_trading:
            if (market, symbol) not in self._not_trading_reported:
                # Loud and once: a typo or a delisting, which the operator must see at start-up.
                logger.error(
                    "%s %s is configured but exchangeInfo does not list it as TRADING: not "
                    "streamed (see /readyz not_streamed)",
                    market.value,
                    symbol,
                    extra={"event_data": {"market": market.value, "symbol": symbol}},
                )
        self._not_trading_reported = set(self.plan.not_trading)
        for market in self.settings.binance.markets:
            self.metrics.listed_symbols.labels(market.value).set(len(self.plan.symbols(market)))
        for shard in self.plan.oversized():
            logger.warning(
                "shard %s holds %d streams, more than one connection carries: raise "
                "binance.markets.%s.shards",
                shard.id,
                len(shard.streams),
                shard.market.value,
            )

    def _observe_ownership(self, ownership: Ownership) -> None:
        metrics = self.metrics
        metrics.shards_owned.set_function(lambda: len(ownership.units))
        metrics.shards_failing.set_function(lambda: ownership.failing)
        for market in self.settings.binance.markets:

            def connected(market: Market = market) -> int:
                return sum(
                    c.connected.is_set()
                    for u in ownership.units.values()
                    if isinstance(u, ShardRunner) and u.shard.market is market
                    for c in u.clients.values()
                )

            metrics.connections_up.labels(market.value).set_function(connected)

    def _acknowledged(self, record: ProducerRecord, latency_ns: int) -> None:
        # Per record, at tens of thousands a second: the series are looked up once per topic
        # and counted in ints (gateway.metrics), read when Prometheus scrapes.
        self._ack_latency.observe(latency_ns / 1e9)
        per_topic = self._ack_metrics.get(record.topic)
        if per_topic is None:
            parts = record.topic.split(".")
            market = parts[-2] if len(parts) >= 3 else "gateway"
            per_topic = self._ack_metrics[record.topic] = (
                self.metrics.records_acked.labels(record.topic),
                self.metrics.event_lag.labels(market),
            )
        acked, lag = per_topic
        acked.value += 1
        if record.event_time_ms is not None:
            lag.observe(max(time.time() - record.event_time_ms / 1000, 0.0))
        if self._on_ack is not None:
            self._on_ack(record, latency_ns)

    def _producer_error(self, error: str) -> None:
        self.metrics.producer_errors.labels(error).inc()

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

    def held_back(self) -> dict[str, float]:
        """Symbols whose live trades wait behind a hole for longer than held_back_report_s."""
        return {
            f"{market.value} {name}": seconds
            for market, keepers in self.keepers.items()
            if keepers.continuity is not None
            for name, seconds in keepers.continuity.held_back().items()
        }

    def _status_server(self) -> StatusServer | None:
        status = self.settings.status
        if not status.enabled:
            return None
        self.status_server = StatusServer(
            self.metrics.registry, self.readiness, status.host, status.port
        )
        return self.status_server

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

    async def _market_keepers(
        self, builder: RecordBuilder, resources: contextlib.AsyncExitStack
    ) -> dict[Market, MarketKeepers]:
        """Per market, shared by its shards: trade continuity and order books, with the
        market's one REST client (Binance counts weight per IP)."""
        keepers = {}
        binance = self.settings.binance
        for market, market_settings in binance.markets.items():
            rest = await resources.enter_async_context(
                BinanceRestClient(binance.rest_url(market), market)
            )
            self.rest[market] = rest
            self.metrics.rest_weight_used.labels(market.value).set_function(
                functools.partial(_used_weight, rest)
            )
            continuity = (
                TradeContinuity(
                    market,
                    rest,
                    builder,
                    self.sink,
                    self.metrics,
                    api_key=(
                        market_settings.api_key.get_secret_value()
                        if market_settings.api_key
                        else None
                    ),
                    give_up_s=binance.backfill_give_up_s,
                    report_held_s=binance.held_back_report_s,
                    plausibility=IdBounds(
                        binance.max_id_jump, binance.max_id_behind, binance.id_jump_confirmations
                    ),
                )
                if market_settings.backfill
                else None
            )
            books = (
                BookKeeper(
                    market,
                    rest,
                    builder,
                    self.sink,
                    self.metrics,
                    depth_limit=market_settings.book_depth_limit,
                    snapshot_interval_s=market_settings.book_snapshot_interval_s,
                )
                if market_settings.sync_books
                else None
            )
            keyless = market is not Market.SPOT and not market_settings.api_key
            if continuity is not None and keyless and "trade" in market_settings.channels:
                logger.warning(
                    "%s trade holes can be filled only from the latest 500 trades: set "
                    "binance.markets.%s.api_key to fetch them by id (historicalTrades)",
                    market.value,
                    market.value,
                )
            keepers[market] = MarketKeepers(continuity, books)
        self.keepers = keepers
        return keepers


def _used_weight(rest: BinanceRestClient) -> float:
    return rest.budget.used(time.time())
