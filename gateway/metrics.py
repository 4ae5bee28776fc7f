"""Prometheus metrics of one gateway process, in a registry of its own (tests run several).

Every name here is on the Grafana dashboard (``deploy/grafana``); a test keeps the two in step.
"""

from __future__ import annotations

import platform
import re

from prometheus_client import (
    PLATFORM_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
)

import gateway

_POSITION = re.compile(r"\[\d+\]")


def field_pattern(name: str) -> str:
    """An unknown field's name without array positions: ``B[12].x`` -> ``B[].x`` (bounded)."""
    return _POSITION.sub("[]", name)


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
        self.frames = Counter(
            "gateway_frames_total", "WebSocket frames received", ["market"], registry=self.registry
        )
        self.events = Counter(
            "gateway_events_total",
            "Events parsed and sent to Kafka",
            ["market", "kind"],
            registry=self.registry,
        )
        self.records_acked = Counter(
            "gateway_records_acked_total",
            "Records Kafka acknowledged, per topic",
            ["topic"],
            registry=self.registry,
        )
        self.producer_errors = Counter(
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
        self.ack_latency = Histogram(
            "gateway_frame_to_ack_seconds",
            "From frame received to Kafka acknowledgement",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.event_lag = Histogram(
            "gateway_event_to_ack_seconds",
            "From the exchange's event time to Kafka acknowledgement (end-to-end lag)",
            ["market"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        # -- bad input and losses --------------------------------------------------------------
        self.dead_letters = Counter(
            "gateway_dead_letters_total",
            "Frames sent to the dead-letter topic",
            ["market", "stage"],
            registry=self.registry,
        )
        self.unknown_fields = Counter(
            "gateway_unknown_fields_total",
            "Payload fields no schema knows yet, kept in the record's extra map",
            ["market", "kind", "field"],
            registry=self.registry,
        )
        self.backfilled = Counter(
            "gateway_backfilled_events_total",
            "Trades fetched over REST to fill a hole in the stream",
            ["market", "kind"],
            registry=self.registry,
        )
        self.trade_gaps = Counter(
            "gateway_trade_gap_ids_total",
            "Trade ids declared lost (REST no longer had them)",
            ["market", "kind"],
            registry=self.registry,
        )
        self.duplicates = Counter(
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
        self.stream_silences = Counter(
            "gateway_stream_silences_total",
            "Times a stream was reported silent, per channel",
            ["market", "channel"],
            registry=self.registry,
        )
        self.stream_gaps = Counter(
            "gateway_stream_gaps_total",
            "Windows of a stream declared lost on the stream_status topic (not recoverable)",
            ["market", "channel"],
            registry=self.registry,
        )
        self.book_resyncs = Counter(
            "gateway_book_resyncs_total",
            "Order books resynchronised from a REST snapshot after missed diffs",
            ["market"],
            registry=self.registry,
        )
        # -- connections and Binance limits ----------------------------------------------------
        self.reconnects = Counter(
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
        self.shard_restarts = Counter(
            "gateway_shard_restarts_total",
            "Shard connections restarted by the supervisor after failing",
            ["shard"],
            registry=self.registry,
        )
        self.rebalances = Counter(
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
        self.account_reconciliations = Counter(
            "gateway_account_reconciliations_total",
            "REST reconciliation snapshots published after an account stream reconnected",
            ["account", "market"],
            registry=self.registry,
        )
        self.listen_key_renewals = Counter(
            "gateway_listen_key_renewals_total",
            "Futures listen keys kept alive or re-created",
            ["account", "market", "action"],
            registry=self.registry,
        )
