"""Counters and histograms counted in plain ints expose exactly what prometheus-client's own
``Counter`` and ``Histogram`` would: dashboards and alerts read /metrics, not our classes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from gateway.metrics import CounterFamily, HistogramFamily, Metrics

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.1, 1, 5)
CREATED = re.compile(r"^(\S+_created(?:\{[^}]*\})?) \S+$", re.MULTILINE)


def exposition(registry: CollectorRegistry) -> str:
    """Both text formats, with the ``_created`` times (wall clock at creation) masked."""
    # prometheus-client types the Prometheus exposition but not the OpenMetrics one.
    openmetrics: bytes = generate_openmetrics(registry)  # type: ignore[no-untyped-call]
    text = generate_latest(registry).decode() + openmetrics.decode()
    return CREATED.sub(r"\1 T", text)


def test_counters_expose_what_a_prometheus_counter_exposes() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    mine = CounterFamily("x_events_total", "Events", ["market", "kind"], registry=ours)
    reference = Counter("x_events_total", "Events", ["market", "kind"], registry=theirs)
    plain = CounterFamily("x_plain_total", "Plain", registry=ours)
    plain_reference = Counter("x_plain_total", "Plain", registry=theirs)
    CounterFamily("x_unused_total", "Never counted", ["market"], registry=ours)
    Counter("x_unused_total", "Never counted", ["market"], registry=theirs)
    for labels, amount in [(("spot", "trade"), 1), (("spot", "agg_trade"), 3), (("usdm", "t"), 0)]:
        mine.labels(*labels).inc(amount)
        reference.labels(*labels).inc(amount)
    cell = mine.labels("spot", "trade")
    cell.value += 2  # the hot path's way
    reference.labels("spot", "trade").inc(2)
    plain.inc()
    plain_reference.inc()
    assert exposition(ours) == exposition(theirs)
    assert cell.get() == 3


@given(st.lists(st.floats(min_value=0, max_value=30, allow_nan=False), max_size=40))
def test_histograms_expose_what_a_prometheus_histogram_exposes(values: list[float]) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    mine = HistogramFamily("x_lag_seconds", "Lag", ["market"], buckets=BUCKETS, registry=ours)
    reference = Histogram("x_lag_seconds", "Lag", ["market"], buckets=BUCKETS, registry=theirs)
    plain = HistogramFamily("x_ack_seconds", "Ack", buckets=BUCKETS, registry=ours)
    plain_reference = Histogram("x_ack_seconds", "Ack", buckets=BUCKETS, registry=theirs)
    reference.labels("spot")  # observe_many([]) makes the series too
    half = len(values) // 2
    for value in values[:half]:
        mine.labels("spot").observe(value)
        plain.observe(value)
    mine.labels("spot").observe_many(values[half:])
    for value in values[half:]:
        plain.observe(value)
    for value in values:
        reference.labels("spot").observe(value)
        plain_reference.observe(value)
    assert exposition(ours) == exposition(theirs)


def test_a_value_on_a_bound_falls_in_that_bound_s_bucket() -> None:
    registry = CollectorRegistry()
    histogram = HistogramFamily("x_seconds", "X", buckets=(1, 2), registry=registry)
    for value in (1.0, 2.0, 2.5):
        histogram.observe(value)
    sample = registry.get_sample_value
    assert sample("x_seconds_bucket", {"le": "1.0"}) == 1
    assert sample("x_seconds_bucket", {"le": "2.0"}) == 2
    assert sample("x_seconds_bucket", {"le": "+Inf"}) == 3
    assert sample("x_seconds_count", {}) == 3
    assert sample("x_seconds_sum", {}) == 5.5


def test_a_name_is_registered_once_and_label_values_must_match_the_names() -> None:
    registry = CollectorRegistry()
    counter = CounterFamily("x_total", "X", ["market"], registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        CounterFamily("x_total", "X again", ["market"], registry=registry)
    with pytest.raises(ValueError, match="takes labels"):
        counter.labels("spot", "trade")
    with pytest.raises(ValueError, match="buckets must increase"):
        HistogramFamily("y_seconds", "Y", buckets=(2, 1), registry=registry)


def test_the_gateway_s_counters_are_read_at_scrape_time() -> None:
    metrics = Metrics()
    frames = metrics.frames.labels("spot")
    frames.value += 5
    assert metrics.registry.get_sample_value("gateway_frames_total", {"market": "spot"}) == 5
    frames.value += 1
    assert metrics.registry.get_sample_value("gateway_frames_total", {"market": "spot"}) == 6
