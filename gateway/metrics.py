"""Prometheus metrics of one gateway process, in a registry of its own (tests run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """Counters the pipeline updates; exposed over HTTP by the worker."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.frames = Counter(
            "gateway_frames_total", "WebSocket frames received", ["market"], registry=self.registry
        )
        self.events = Counter(
            "gateway_events_total",
            "Events parsed and sent to Kafka",
            ["market", "kind"],
            registry=self.registry,
        )
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
        self.book_resyncs = Counter(
            "gateway_book_resyncs_total",
            "Order books resynchronised from a REST snapshot after missed diffs",
            ["market"],
            registry=self.registry,
        )
        self.reconnects = Counter(
            "gateway_reconnects_total", "WebSocket reconnects", ["market"], registry=self.registry
        )
        self.kafka_queue_depth = Gauge(
            "gateway_kafka_queue_depth", "Records waiting for the producer", registry=self.registry
        )
        self.ack_latency = Histogram(
            "gateway_frame_to_ack_seconds",
            "From frame received to Kafka acknowledgement",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
