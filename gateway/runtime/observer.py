"""The worker's metrics and start-up warnings: what the plan, the shards and the sink report.

:class:`WorkerObserver` is told about each acknowledged record and each producer error (the
sink's callbacks), each new plan, and the ownership once it exists; it keeps the Prometheus
series (:mod:`gateway.metrics`) and the logs an operator must see about the plan.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping

from gateway.adapters.binance_rest import BinanceRestClient
from gateway.adapters.kafka import AckListener
from gateway.binance.markets import Market
from gateway.coordination.plan import ShardPlan
from gateway.metrics import Buckets, Count, Metrics
from gateway.records.topics import ProducerRecord
from gateway.runtime.ownership import Ownership
from gateway.runtime.shards import ShardRunner

logger = logging.getLogger(__name__)


class WorkerObserver:
    """Keeps the worker's gauges and counters; each method is one thing the worker observed."""

    def __init__(
        self, metrics: Metrics, markets: Iterable[Market], on_ack: AckListener | None = None
    ) -> None:
        self.metrics = metrics
        self._markets = tuple(markets)
        self._on_ack = on_ack
        self._ack_metrics: dict[str, tuple[Count, Buckets]] = {}
        self._ack_latency = metrics.ack_latency.labels()
        self._not_trading_reported: set[tuple[Market, str]] = set()

    def acknowledged(self, record: ProducerRecord, latency_ns: int) -> None:
        """Kafka acknowledged ``record``, ``latency_ns`` after its frame was received."""
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

    def producer_error(self, error: str) -> None:
        """A send failed or was retried with ``error`` (the exception's type name)."""
        self.metrics.producer_errors.labels(error).inc()

    def sink(self, queue_depth: Callable[[], int], held_back: Callable[[], int]) -> None:
        """Read the sink's queue and the symbols held back behind a hole at each scrape."""
        self.metrics.kafka_queue_depth.set_function(queue_depth)
        self.metrics.symbols_held_back.set_function(held_back)

    def markets(self, rest: Mapping[Market, BinanceRestClient]) -> None:
        """Read each market's REST weight used at each scrape."""
        for market, client in rest.items():
            self.metrics.rest_weight_used.labels(market.value).set_function(
                functools.partial(_used_weight, client)
            )

    def plan(self, plan: ShardPlan) -> None:
        """A plan is in force: count its symbols, say once what it leaves out and what does
        not fit one connection."""
        for market, symbol in plan.not_trading:
            if (market, symbol) not in self._not_trading_reported:
                # Loud and once: a typo or a delisting, which the operator must see at start-up.
                logger.error(
                    "%s %s is configured but exchangeInfo does not list it as TRADING: not "
                    "streamed (see /readyz not_streamed)",
                    market.value,
                    symbol,
                    extra={"event_data": {"market": market.value, "symbol": symbol}},
                )
        self._not_trading_reported = set(plan.not_trading)
        for market in self._markets:
            self.metrics.listed_symbols.labels(market.value).set(len(plan.symbols(market)))
        for shard in plan.oversized():
            logger.warning(
                "shard %s holds %d streams, more than one connection carries: raise "
                "binance.markets.%s.shards",
                shard.id,
                len(shard.streams),
                shard.market.value,
            )

    def ownership(self, ownership: Ownership) -> None:
        """Read the shards held, failing and connected at each scrape."""
        metrics = self.metrics
        metrics.shards_owned.set_function(lambda: len(ownership.units))
        metrics.shards_failing.set_function(lambda: ownership.failing)
        for market in self._markets:

            def connected(market: Market = market) -> int:
                return sum(
                    c.connected.is_set()
                    for u in ownership.units.values()
                    if isinstance(u, ShardRunner) and u.shard.market is market
                    for c in u.clients.values()
                )

            metrics.connections_up.labels(market.value).set_function(connected)

    def reconnects(self) -> float:
        """WebSocket reconnects since start, every market and shard."""
        return sum(
            sample.value
            for metric in self.metrics.reconnects.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )


def _used_weight(rest: BinanceRestClient) -> float:
    return rest.budget.used(time.time())
