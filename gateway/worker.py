"""A gateway process: its connections, the shared Kafka sink, start-up and a clean drain.

Start-up order: schemas (registered when a registry is configured), topics, the producer, then
the connections. Stopping (SIGTERM or the ``stop`` event) stops reading first, then flushes the
producer, so every frame read is either in Kafka or reported as an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from gateway.adapters.binance_rest import BinanceRestClient
from gateway.adapters.binance_ws import BinanceStreamClient
from gateway.adapters.http_status import StatusServer
from gateway.adapters.kafka import AckListener, KafkaSink, ensure_topics
from gateway.adapters.registry import SchemaRegistryClient, register_catalog
from gateway.binance.markets import Market
from gateway.binance.messages import RECORD_CLASSES, FrameParser
from gateway.binance.policy import SlidingWindowLimit
from gateway.binance.streams import chunk, combined_path, stream_name, usdm_route
from gateway.books import BookKeeper
from gateway.continuity import TradeContinuity
from gateway.metrics import Metrics
from gateway.pipeline import FramePipeline
from gateway.records.avro import ConfluentFraming, Framing, SchemaCatalog, SingleObjectFraming
from gateway.records.builder import RecordBuilder
from gateway.records.topics import DEAD_LETTER_KIND, TRADE_GAP_KIND, ProducerRecord, TopicNamer
from gateway.settings import GatewaySettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MarketKeepers:
    """The per-market state every connection of that market shares."""

    continuity: TradeContinuity | None
    books: BookKeeper | None

    async def stop(self) -> None:
        for keeper in (self.continuity, self.books):
            if keeper is not None:
                await keeper.stop()


class Gateway:
    """Streams the configured markets into Kafka until stopped."""

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
        self.sink = KafkaSink(settings.kafka, on_ack=self._acknowledged)
        self.metrics.kafka_queue_depth.set_function(lambda: self.sink.queue_depth)
        self.connections: list[BinanceStreamClient] = []
        self.status_server: StatusServer | None = None
        self.keepers: dict[Market, MarketKeepers] = {}
        self.draining = False
        self.started = asyncio.Event()
        """Set once schemas, topics and the producer are ready and the connections are opening."""

    def topics(self) -> list[str]:
        """Every topic this configuration may write to: each public event kind of each
        configured market (a stream can carry more than one kind), and the gateway's own."""
        names = {self.namer.gateway_topic(kind) for kind in (DEAD_LETTER_KIND, TRADE_GAP_KIND)}
        for market in self.settings.binance.markets:
            names.update(
                self.namer.topic(market.value, c.KIND) for c in RECORD_CLASSES[market.value]
            )
        return sorted(names)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until ``stop`` is set or a connection fails fatally; always drains the sink."""
        stop = stop or asyncio.Event()
        builder = RecordBuilder(
            self.catalog, await self._framing(), self.namer, self.settings.gateway_id
        )
        if self.settings.kafka.create_topics:
            await ensure_topics(self.settings.kafka, self.topics())
        await self.sink.start()
        status = self._status_server()
        async with contextlib.AsyncExitStack() as resources:
            keepers = await self._market_keepers(builder, resources)
            try:
                if status is not None:
                    await status.start()
                self.connections = self._build_connections(builder, keepers)
                self.started.set()
                await self._run_until_stopped(stop)
            finally:
                self.draining = True
                for keeper in keepers.values():
                    await keeper.stop()
                await self.sink.stop()
            if status is not None:
                await status.stop()
            logger.info(
                "stopped: %d records acknowledged, %d failed",
                self.sink.stats.acked,
                self.sink.stats.failed,
            )

    def _acknowledged(self, record: ProducerRecord, latency_ns: int) -> None:
        self.metrics.ack_latency.observe(latency_ns / 1e9)
        if self._on_ack is not None:
            self._on_ack(record, latency_ns)

    def readiness(self) -> tuple[bool, dict[str, object]]:
        """Ready: streaming on every connection and not draining; the details say what is not."""
        connected = {c.name: c.connected.is_set() for c in self.connections}
        ready = self.started.is_set() and not self.draining and all(connected.values())
        details: dict[str, object] = {
            "draining": self.draining,
            "connections": connected,
            "kafka_queue_depth": self.sink.queue_depth,
            "records_acked": self.sink.stats.acked,
            "records_failed": self.sink.stats.failed,
        }
        return ready, details

    def _status_server(self) -> StatusServer | None:
        status = self.settings.status
        if not status.enabled:
            return None
        self.status_server = StatusServer(
            self.metrics.registry, self.readiness, status.host, status.port
        )
        return self.status_server

    async def _framing(self) -> Framing:
        registry = self.settings.registry
        if registry.url is None:
            return SingleObjectFraming()
        async with SchemaRegistryClient(registry.url, registry.timeout_s) as client:
            return ConfluentFraming(await register_catalog(client, self.catalog, self.namer))

    async def _market_keepers(
        self, builder: RecordBuilder, resources: contextlib.AsyncExitStack
    ) -> dict[Market, MarketKeepers]:
        """Per market, shared by its connections: trade continuity and order books, with the
        market's one REST client (Binance counts weight per IP)."""
        keepers = {}
        binance = self.settings.binance
        for market, market_settings in binance.markets.items():
            rest = await resources.enter_async_context(
                BinanceRestClient(binance.rest_url(market), market)
            )
            continuity = (
                TradeContinuity(market, rest, builder, self.sink, self.metrics)
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
            keepers[market] = MarketKeepers(continuity, books)
        self.keepers = keepers
        return keepers

    def _build_connections(
        self, builder: RecordBuilder, keepers: dict[Market, MarketKeepers]
    ) -> list[BinanceStreamClient]:
        binance = self.settings.binance
        connections = []
        attempts = SlidingWindowLimit(
            binance.max_connection_attempts, binance.connection_attempt_window_s
        )
        for market, market_settings in binance.markets.items():
            names = [
                stream_name(symbol, channel)
                for symbol in market_settings.symbols
                for channel in market_settings.channels
            ] + list(market_settings.market_wide)
            for route, index, group in self._shards(market, names):
                name = f"{market.value}{route.replace('/', '-')}-{index}"
                url = (
                    binance.stream_url(market)
                    + route
                    + combined_path(group, market_settings.time_unit)
                )
                pipeline = FramePipeline(
                    FrameParser(market, market_settings.time_unit),
                    builder,
                    self.sink,
                    self.metrics,
                    connection=name,
                    continuity=keepers[market].continuity,
                    books=keepers[market].books,
                )
                reconnects = self.metrics.reconnects.labels(market.value)
                connections.append(
                    BinanceStreamClient(
                        url,
                        pipeline,
                        binance,
                        name=name,
                        on_reconnect=reconnects.inc,
                        attempts=attempts,
                    )
                )
        return connections

    def _shards(self, market: Market, names: list[str]) -> list[tuple[str, int, list[str]]]:
        """(route, index, streams) per connection: USD-M streams split by route first."""
        limit = self.settings.binance.markets[market].max_streams_per_connection
        by_route: dict[str, list[str]] = {}
        for name in names:
            by_route.setdefault(usdm_route(name) if market is Market.USDM else "", []).append(name)
        return [
            (route, index, group)
            for route, routed in sorted(by_route.items())
            for index, group in enumerate(chunk(routed, limit))
        ]

    async def _run_until_stopped(self, stop: asyncio.Event) -> None:
        readers = [asyncio.create_task(c.run(), name=c.name) for c in self.connections]
        stopper = asyncio.create_task(stop.wait(), name="stop-signal")
        try:
            done, _ = await asyncio.wait([*readers, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in [*readers, stopper]:
                task.cancel()
            for task in [*readers, stopper]:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for task in done:
            if task is not stopper:
                task.result()  # a reader only ends by failing: surface why
