"""The last trade ids Kafka already holds, so whoever takes symbols over continues where it ends.

When a shard of symbols moves to another worker (the old one was killed or drained), or a worker
restarts after a Kafka outage longer than the producer's timeout, its trade continuity must not
start from the first live id: what the previous owner published would be sent again, and the ids
between Kafka's last record and the first live one would be missing. :class:`LastIdReader` reads
those last ids; ``TradeContinuity.resume`` seeds from them, so the hole is backfilled from REST.

Records are keyed by symbol and ``KafkaSink`` leaves partitioning to aiokafka's default
(murmur2 of the key, as Java's client), so a symbol lives in one partition: :func:`partition_for`
names it, and only that partition is searched. Each partition is read backwards in growing
windows from its end (2,000 records, then x4, up to a cap), forwards within a window, keeping only
the last raw value of each wanted key; the few values found are decoded at the end. A consumer
with no group (assign and seek, nothing committed) leaves no trace in Kafka.

A symbol is absent from the answer when its topic does not exist yet, it was never written, or
its last record is older than the cap (or in another partition because partitions were added
since): it then starts from its first live id, as a symbol new to Kafka does. Backfilled
records (header ``backfilled: 1``) count like live ones: they are the same trades. Gap records
live in their own topic and are never a resume point: within a run, a trade follows each gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from gateway.adapters.kafka import map_kafka_errors
from gateway.adapters.kafka_security import client_options
from gateway.binance.events.trades import AggTrade, Trade
from gateway.binance.markets import Market
from gateway.errors import KafkaDeliveryError, SerializationError
from gateway.records.topics import TopicNamer, symbol_key
from gateway.settings import KafkaSettings

logger = logging.getLogger(__name__)

ID_FIELDS: Mapping[str, str] = {Trade.KIND: "trade_id", AggTrade.KIND: "agg_trade_id"}
"""Per kind, the value field holding the contiguous id (schemas/*/trade.avsc, agg_trade.avsc)."""

FIRST_WINDOW = 2_000
WINDOW_GROWTH = 4
MAX_RECORDS_PER_PARTITION = 200_000
_POLL_MS = 500


class Decoder(Protocol):
    """Turns a framed value into its record (``ValueDecoder`` in production)."""

    async def decode(self, value: bytes) -> dict[str, Any]: ...


def partition_for(key: bytes, partitions: Collection[int]) -> int:
    """The partition the producer sends ``key`` to: aiokafka's ``DefaultPartitioner``."""
    return int(DefaultPartitioner()(key, sorted(partitions), []))


@dataclass(slots=True)
class PartitionScan:
    """Which offsets of one partition to read next, and the last value found per wanted key.

    Windows are ``[lower, upper)``; each next one ends where the previous began and is ``growth``
    times larger, until every key is found, the partition's start is reached or ``max_records``
    were read. Keys found in a window are final: no later window (newer records) held them.
    """

    begin: int
    end: int
    wanted: set[bytes]
    window: int = FIRST_WINDOW
    growth: int = WINDOW_GROWTH
    max_records: int = MAX_RECORDS_PER_PARTITION
    found: dict[bytes, bytes] = field(default_factory=dict)
    windows: int = 0
    lower: int = field(init=False)
    upper: int = field(init=False)
    finished: bool = field(init=False)
    _in_window: dict[bytes, bytes] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.upper = self.end
        self.lower = max(self.begin, self.end - min(self.window, self.max_records))
        self.finished = not self.wanted or self.begin >= self.end
        if not self.finished:
            self.windows = 1

    def receive(self, offset: int, key: bytes | None, value: bytes | None) -> None:
        """One record read (in offset order); outside the window or unwanted, it is ignored."""
        if key is None or value is None or key not in self.wanted:
            return
        if self.lower <= offset < self.upper:
            self._in_window[key] = value

    def window_read(self) -> bool:
        """The current window has been read; True if an older window is to be read next."""
        self.found.update(self._in_window)
        self.wanted -= self._in_window.keys()
        self._in_window = {}
        if not self.wanted or self.lower <= self.begin or self.end - self.lower >= self.max_records:
            self.finished = True
            return False
        self.window *= self.growth
        self.upper = self.lower
        self.lower = max(self.begin, self.upper - self.window, self.end - self.max_records)
        self.windows += 1
        return True


@dataclass(frozen=True, slots=True)
class _Request:
    market: Market
    symbols: frozenset[str]
    answer: asyncio.Future[dict[tuple[str, str], int]]


class LastIdReader:
    """Finds the last trade and aggregate-trade id per symbol in a market's topics.

    Use as ``async with``; one reader (one consumer connection) serves any number of calls.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        namer: TopicNamer,
        decoder: Decoder,
        *,
        first_window: int = FIRST_WINDOW,
        max_records_per_partition: int = MAX_RECORDS_PER_PARTITION,
        timeout_s: float = 120.0,
    ) -> None:
        self._settings = settings
        self._namer = namer
        self._decoder = decoder
        self._first_window = first_window
        self._max_records = max_records_per_partition
        self._timeout_s = timeout_s
        options = client_options(settings.security)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=f"{settings.client_id}-tail",
            group_id=None,
            enable_auto_commit=False,
            # Retention may delete a window's start while it is read: go on from what is left.
            auto_offset_reset="earliest",
            **options,
        )
        # The consumer only knows the partitions of topics it reads; the admin client lists every
        # topic's without naming any, so a missing topic is never auto-created by the asking.
        self._admin = AIOKafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=f"{settings.client_id}-tail-admin",
            request_timeout_ms=settings.request_timeout_ms,
            **options,
        )
        self._waiting: list[_Request] = []
        self._scanner: asyncio.Task[None] | None = None
        self.last_scans: dict[TopicPartition, PartitionScan] = {}
        """The scans of the latest call, for logs and tests."""
        self.scans = 0
        """Scans made so far (one per market per batch of requests), for tests and the bench."""

    async def __aenter__(self) -> Self:
        with map_kafka_errors("starting the tail reader", self._settings.bootstrap_servers):
            try:
                await self._admin.start()
                await self._consumer.start()
            except BaseException:
                await self._close()  # a refused login or no broker: release what start() made
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        if self._scanner is not None:
            self._scanner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scanner
        try:
            await self._consumer.stop()
        finally:
            await self._admin.close()

    async def last_ids(
        self, market: Market, symbols: Collection[str]
    ) -> dict[tuple[str, str], int]:
        """``(symbol, kind) -> last id`` in Kafka, kind in ``trade`` / ``agg_trade``.

        Keys not found are absent (see the module docstring); KafkaDeliveryError if Kafka cannot
        be read within ``timeout_s``.

        Calls made while a scan runs (a worker taking several shards at once) wait for it and
        are then served together by one scan per market, so each partition is read once for all
        of them rather than once per shard, and no shard waits behind the others' scans.
        """
        request = _Request(market, frozenset(symbols), asyncio.get_running_loop().create_future())
        self._waiting.append(request)
        if self._scanner is None or self._scanner.done():
            self._scanner = asyncio.create_task(self._serve(), name="last-id-reader")
        return await asyncio.shield(request.answer)

    async def _serve(self) -> None:
        """Serve the waiting requests in batches until none is left; one consumer, one scan
        at a time (a scan re-assigns the consumer's partitions)."""
        await asyncio.sleep(0)  # callers woken in the same turn join this batch
        while self._waiting:
            batch, self._waiting = self._waiting, []
            for market in dict.fromkeys(r.market for r in batch):
                requests = [r for r in batch if r.market is market]
                symbols = frozenset().union(*(r.symbols for r in requests))
                try:
                    found = await self._last_ids(market, symbols)
                except Exception as exc:  # noqa: BLE001 - every caller of the batch gets it
                    for r in requests:
                        if not r.answer.done():
                            r.answer.set_exception(exc)
                    continue
                for r in requests:
                    if not r.answer.done():
                        r.answer.set_result({k: v for k, v in found.items() if k[0] in r.symbols})

    async def _last_ids(
        self, market: Market, symbols: Collection[str]
    ) -> dict[tuple[str, str], int]:
        bootstrap = self._settings.bootstrap_servers
        try:
            async with asyncio.timeout(self._timeout_s):
                with map_kafka_errors("reading the topics' last records", bootstrap):
                    scans = await self._plan(market, symbols)
                    await self._scan(scans)
        except TimeoutError as exc:
            raise KafkaDeliveryError(
                f"reading the last records of {market.value} trades from Kafka at {bootstrap} "
                f"took over {self._timeout_s:.0f}s"
            ) from exc
        self.last_scans = scans
        self.scans += 1
        raw = {
            (key.decode(), tp.topic.rsplit(".", 1)[-1]): value
            for tp, scan in scans.items()
            for key, value in scan.found.items()
        }
        found = await decode_ids(raw, self._decoder)
        wanted = len(symbols) * len(ID_FIELDS)
        logger.info(
            "%s: last ids found in Kafka for %d of %d symbol streams; %d not found "
            "(new to Kafka, topic missing, or beyond the %d-record scan)",
            market.value,
            len(found),
            wanted,
            wanted - len(found),
            self._max_records,
        )
        return found

    async def _plan(
        self, market: Market, symbols: Collection[str]
    ) -> dict[TopicPartition, PartitionScan]:
        partitions_of = {
            str(topic["topic"]): [int(p["partition"]) for p in topic["partitions"]]
            for topic in await self._admin.describe_topics()
        }
        wanted: dict[TopicPartition, set[bytes]] = {}
        for kind in ID_FIELDS:
            topic = self._namer.topic(market.value, kind)
            partitions = partitions_of.get(topic)
            if not partitions:
                continue  # not created yet: nothing to resume from
            for symbol in symbols:
                key = symbol_key(symbol)
                wanted.setdefault(TopicPartition(topic, partition_for(key, partitions)), set()).add(
                    key
                )
        if not wanted:
            return {}
        begins = await self._consumer.beginning_offsets(list(wanted))
        ends = await self._consumer.end_offsets(list(wanted))
        return {
            tp: PartitionScan(
                begins[tp],
                ends[tp],
                keys,
                window=self._first_window,
                max_records=self._max_records,
            )
            for tp, keys in wanted.items()
        }

    async def _scan(self, scans: Mapping[TopicPartition, PartitionScan]) -> None:
        """Read every partition's windows at once: one fetch serves all partitions."""
        active = {tp: scan for tp, scan in scans.items() if not scan.finished}
        if not active:
            return
        consumer = self._consumer
        consumer.assign(list(active))
        try:
            for tp, scan in active.items():
                consumer.seek(tp, scan.lower)
            while active:
                batches = await consumer.getmany(*active, timeout_ms=_POLL_MS)
                for tp, messages in batches.items():
                    scan = active[tp]
                    for message in messages:
                        scan.receive(message.offset, message.key, message.value)
                for tp in list(active):
                    scan = active[tp]
                    if await consumer.position(tp) < scan.upper:
                        continue
                    if scan.window_read():
                        consumer.seek(tp, scan.lower)
                    else:
                        consumer.pause(tp)
                        del active[tp]
        finally:
            consumer.unsubscribe()


async def decode_ids(
    values: Mapping[tuple[str, str], bytes], decoder: Decoder
) -> dict[tuple[str, str], int]:
    """``(symbol, kind) -> id`` from each key's last raw value.

    A value this process cannot read (a schema it does not know, during a rolling upgrade) is
    left out with a warning rather than failing the take-over: that symbol starts from its
    first live id, as before resuming existed. A registry that cannot be reached still raises
    (``RegistryError``): that is worth a retry.
    """
    ids: dict[tuple[str, str], int] = {}
    for (symbol, kind), value in values.items():
        try:
            ids[(symbol, kind)] = int((await decoder.decode(value))[ID_FIELDS[kind]])
        except (SerializationError, KeyError, ValueError, EOFError) as exc:
            logger.warning(
                "%s %s: its last record in Kafka cannot be read (%s: %s); "
                "it starts from its first live id",
                symbol,
                kind,
                type(exc).__name__,
                exc,
            )
    return ids
