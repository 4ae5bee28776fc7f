"""Prometheus metrics of one gateway process, in a registry of its own (tests run several).

Every name here is on the Grafana dashboard (``deploy/grafana``); a test keeps the two in step.

Counters and histograms are counted in plain integers: the frame path adds to a :class:`Count`
it looked up once (``family.labels(...)`` when the connection starts), and the registry reads
them when Prometheus scrapes, through the families, which are prometheus-client collectors. A
``prometheus_client.Counter`` takes a lock and, through ``labels()``, a dictionary look-up under
another lock on every call; at tens of thousands of events a second that was 6 µs per event
(issue 16). What /metrics shows is the same: names, types, labels, HELP texts, ``_created``.
Gauges stay prometheus-client's: they are set rarely or read by a function at scrape time.
"""

from __future__ import annotations

import platform
import re
import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import PLATFORM_COLLECTOR, CollectorRegistry, Gauge, ProcessCollector
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

import gateway

_POSITION = re.compile(r"\[\d+\]")


def field_pattern(name: str) -> str:
    """An unknown field's name without array positions: ``B[12].x`` -> ``B[].x`` (bounded)."""
    return _POSITION.sub("[]", name)


class Count:
    """One counter series: an int the hot path adds to (``count.value += n`` or ``inc``)."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0
        self.created = time.time()

    def inc(self, amount: int = 1) -> None:
        self.value += amount

    def get(self) -> int:
        return self.value


class Buckets:
    """One histogram series: counts per bucket (the last one is +Inf) and the sum."""

    __slots__ = ("_bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, value: float) -> None:
        # A bucket holds values up to and including its bound (``le``), as Prometheus defines it.
        self.counts[bisect_left(self._bounds, value)] += 1
        self.sum += value

    def observe_many(self, values: Sequence[float]) -> None:
        """Several observations at once (a batch of acknowledgements)."""
        bounds, counts, total = self._bounds, self.counts, self.sum
        for value in values:
            counts[bisect_left(bounds, value)] += 1
            total += value  # in order, as one observe() after another would sum them
        self.sum = total

    @property
    def count(self) -> int:
        return sum(self.counts)


class _Family(Collector):
    """Series by label values, created on first use; exposed whenever the registry collects."""

    type = ""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        registry.register(self)

    def describe(self) -> Iterator[Metric]:
        """The family without samples: lets the registry refuse a second metric of this name."""
        yield Metric(self.name, self.documentation, self.type)


class CounterFamily(_Family):
    """A counter's series as :class:`Count` cells (a ``prometheus_client.Counter`` replacement)."""

    type = "counter"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        registry: CollectorRegistry,
    ) -> None:
        super().__init__(name.removesuffix("_total"), documentation, labelnames, registry)
        self._series: dict[tuple[str, ...], Count] = {}
        if not self.labelnames:
            self._series[()] = Count()

    def labels(self, *values: str) -> Count:
        """The series of these label values, created at 0 on first use (keep it: the hot path
        adds to the cell, it does not look it up again)."""
        series = self._series.get(values)
        if series is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
            series = self._series[values] = Count()
        return series

    def inc(self, amount: int = 1) -> None:
        """The unlabelled counter's increment."""
        self._series[()].value += amount

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, series in list(self._series.items()):
            family.add_metric(values, series.value, created=series.created)
        yield family


class HistogramFamily(_Family):
    """A histogram's series as :class:`Buckets` (a ``prometheus_client.Histogram`` replacement)."""

    type = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        super().__init__(name, documentation, labelnames, registry)
        self._bounds = tuple(float(b) for b in buckets)
        if list(self._bounds) != sorted(set(self._bounds)):
            raise ValueError(f"{name}: buckets must increase, got {buckets}")
        # The ``le`` labels as prometheus-client writes them (``1.0``, ``0.0025``, ``+Inf``).
        self._les = [floatToGoString(b) for b in self._bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        self._series: dict[tuple[str, ...], Buckets] = {}
        if not self.labelnames:
            self._series[()] = Buckets(self._bounds)

    def labels(self, *values: str) -> Buckets:
        series = self._series.get(values)
        if series is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
            series = self._series[values] = Buckets(self._bounds)
        return series

    def observe(self, value: float) -> None:
        """The unlabelled histogram's observation."""
        self._series[()].observe(value)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, series in list(self._series.items()):
            cumulative, running = [], 0
            for le, count in zip(self._les, list(series.counts), strict=True):
                running += count
                cumulative.append((le, float(running)))
            family.add_metric(values, cumulative, series.sum)
            family.add_sample(
                self.name + "_created",
                dict(zip(self.labelnames, values, strict=True)),
                series.created,
            )
        yield family


class Metrics:
    """Counters the pipeline updates; exposed over HTTP by the worker."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # -- the process -----------------------------------------------------------------------
        # process_* (CPU, resident memory, open fds, start time) and python_info, as every
        # Prometheus client exposes them; the registry is our own, so they are added here.
        ProcessCollector(registry=self.registry)
        self.registry.register(PLATFORM_COLLECTOR)
        self.build_info = Gauge(
            "gateway_build_info",
            "Always 1; the labels say which gateway and Python run (join on them in alerts)",
            ["version", "python"],
            registry=self.registry,
        )
        self.build_info.labels(gateway.__version__, platform.python_version()).set(1)
        # -- events in and out -----------------------------------------------------------------
        self.frames = CounterFamily(
            "gateway_frames_total", "WebSocket frames received", ["market"], registry=self.registry
        )
        self.events = CounterFamily(
            "gateway_events_total",
            "Events parsed and sent to Kafka",
            ["market", "kind"],
            registry=self.registry,
        )
        self.records_acked = CounterFamily(
            "gateway_records_acked_total",
            "Records Kafka acknowledged, per topic",
            ["topic"],
            registry=self.registry,
        )
        self.producer_errors = CounterFamily(
            "gateway_producer_errors_total",
            "Kafka sends that failed or were retried, by error type",
            ["error"],
            registry=self.registry,
        )
        self.kafka_queue_depth = Gauge(
            "gateway_kafka_queue_depth", "Records waiting for the producer", registry=self.registry
        )
        self.symbols_held_back = Gauge(
            "gateway_symbols_held_back",
            "Symbols whose live trades wait behind a hole longer than binance.held_back_report_s",
            registry=self.registry,
        )
        self.ack_latency = HistogramFamily(
            "gateway_frame_to_ack_seconds",
            "From frame received to Kafka acknowledgement",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.event_lag = HistogramFamily(
            "gateway_event_to_ack_seconds",
            "From the exchange's event time to Kafka acknowledgement (end-to-end lag)",
            ["market"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        # -- bad input and losses --------------------------------------------------------------
        self.dead_letters = CounterFamily(
            "gateway_dead_letters_total",
            "Frames sent to the dead-letter topic",
            ["market", "stage"],
            registry=self.registry,
        )
        self.unknown_fields = CounterFamily(
            "gateway_unknown_fields_total",
            "Payload fields no schema knows yet, kept in the record's extra map",
            ["market", "kind", "field"],
            registry=self.registry,
        )
        self.backfilled = CounterFamily(
            "gateway_backfilled_events_total",
            "Trades fetched over REST to fill a hole in the stream",
            ["market", "kind"],
            registry=self.registry,
        )
        self.trade_gaps = CounterFamily(
            "gateway_trade_gap_ids_total",
            "Trade ids declared lost (REST no longer had them)",
            ["market", "kind"],
            registry=self.registry,
        )
        self.duplicates = CounterFamily(
            "gateway_duplicate_events_total",
            "Events seen twice (reconnect or rotation overlap) and published once",
            ["market"],
            registry=self.registry,
        )
        self.silent_streams = Gauge(
            "gateway_silent_streams",
            "Streams that should have delivered by now and did not (see the stream_status topic)",
            ["market"],
            registry=self.registry,
        )
        self.stream_silences = CounterFamily(
            "gateway_stream_silences_total",
            "Times a stream was reported silent, per channel",
            ["market", "channel"],
            registry=self.registry,
        )
        self.stream_gaps = CounterFamily(
            "gateway_stream_gaps_total",
            "Windows of a stream declared lost on the stream_status topic (not recovered from REST)",
            ["market", "channel"],
            registry=self.registry,
        )
        self.book_resyncs = CounterFamily(
            "gateway_book_resyncs_total",
            "Order books resynchronised from a REST snapshot after missed diffs",
            ["market"],
            registry=self.registry,
        )
        # -- connections and Binance limits ----------------------------------------------------
        self.reconnects = CounterFamily(
            "gateway_reconnects_total", "WebSocket reconnects", ["market"], registry=self.registry
        )
        self.connections_up = Gauge(
            "gateway_connections_up",
            "WebSocket connections currently streaming",
            ["market"],
            registry=self.registry,
        )
        self.rest_weight_used = Gauge(
            "gateway_rest_weight_used",
            "REST request weight used in the current minute, as Binance reports it",
            ["market"],
            registry=self.registry,
        )
        # -- shards and the group --------------------------------------------------------------
        self.shards_owned = Gauge(
            "gateway_shards_owned", "Shards this worker streams", registry=self.registry
        )
        self.shards_failing = Gauge(
            "gateway_shards_failing",
            "Owned shards whose connections keep failing (retried slowly, see logs)",
            registry=self.registry,
        )
        self.shard_restarts = CounterFamily(
            "gateway_shard_restarts_total",
            "Shard connections restarted by the supervisor after failing",
            ["shard"],
            registry=self.registry,
        )
        self.rebalances = CounterFamily(
            "gateway_rebalances_total",
            "Group rebalances this worker took part in",
            registry=self.registry,
        )
        self.listed_symbols = Gauge(
            "gateway_plan_symbols",
            "Symbols in the shard plan, per market (follows exchangeInfo)",
            ["market"],
            registry=self.registry,
        )
        # -- private account streams -----------------------------------------------------------
        self.account_stream_up = Gauge(
            "gateway_account_stream_up",
            "1 while the account's user-data stream is subscribed and live, else 0",
            ["account", "market"],
            registry=self.registry,
        )
        self.account_last_event = Gauge(
            "gateway_account_last_event_timestamp_seconds",
            "Unix time of the account's last user-data event (alert on time() minus this)",
            ["account", "market"],
            registry=self.registry,
        )
        self.account_reconciliations = CounterFamily(
            "gateway_account_reconciliations_total",
            "REST reconciliation snapshots published after an account stream reconnected",
            ["account", "market"],
            registry=self.registry,
        )
        self.listen_key_renewals = CounterFamily(
            "gateway_listen_key_renewals_total",
            "Futures listen keys kept alive or re-created",
            ["account", "market", "action"],
            registry=self.registry,
        )
