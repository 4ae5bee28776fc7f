"""The Grafana dashboard and gateway/metrics.py stay in step: no panel queries a metric the
gateway does not export, and no exported metric is missing from the dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.metrics_core import Metric

import gateway
from gateway.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "binance-gateway.json"
# The gateway's own metrics, and the process_* every Prometheus client exports (CPU, memory).
METRIC_NAME = re.compile(r"\b(?:gateway|process)_[a-z0-9_]+\b")
# What each Prometheus type exposes, from the family name prometheus_client reports.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}


def families() -> list[Metric]:
    return list(Metrics().registry.collect())


def exposed_names(family: Metric) -> set[str]:
    return {family.name + suffix for suffix in SUFFIXES[family.type]}


def all_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for panel in panels:
        found.append(panel)
        found += all_panels(panel.get("panels", []))
    return found


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


@pytest.fixture(scope="module")
def expressions(dashboard: dict[str, Any]) -> list[str]:
    exprs = [
        target["expr"]
        for panel in all_panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]
    exprs += [
        var["definition"] for var in dashboard["templating"]["list"] if var["type"] == "query"
    ]
    return exprs


def test_every_queried_metric_is_exported(expressions: list[str]) -> None:
    exported = set().union(*(exposed_names(f) for f in families()))
    used = {name for expr in expressions for name in METRIC_NAME.findall(expr)}
    assert used, "the dashboard queries no gateway metric"
    assert sorted(used - exported) == []


def test_every_exported_metric_is_on_a_panel(dashboard: dict[str, Any]) -> None:
    panel_exprs = " ".join(
        target["expr"]
        for panel in all_panels(dashboard["panels"])
        for target in panel.get("targets", [])
    )
    used = set(METRIC_NAME.findall(panel_exprs))
    ours = [f for f in families() if f.name.startswith("gateway_")]
    missing = [f.name for f in ours if not exposed_names(f) & used]
    assert missing == []


def test_process_and_build_info_are_exported() -> None:
    names = {f.name for f in families()}
    assert {"process_resident_memory_bytes", "process_cpu_seconds", "process_start_time_seconds",
            "gateway_build_info"} <= names  # fmt: skip
    [build] = [f for f in families() if f.name == "gateway_build_info"]
    [sample] = build.samples
    assert sample.labels["version"] == gateway.__version__ and sample.value == 1


def test_histograms_are_read_as_histograms(expressions: list[str]) -> None:
    for expr in expressions:
        if "histogram_quantile" in expr:
            assert "_bucket" in expr and "by (le" in expr, expr
        assert expr.count("(") == expr.count(")"), expr


def test_importable_into_grafana_with_a_prometheus_variable(dashboard: dict[str, Any]) -> None:
    variables = {var["name"]: var for var in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert dashboard["schemaVersion"] >= 36  # Grafana 9+ layout; 10+ imports it as is
    panels = all_panels(dashboard["panels"])
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}", panel["title"]
