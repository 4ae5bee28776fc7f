"""The alert rules beside the dashboard: valid for the Prometheus Operator, lint-clean for
promtool, and querying only metrics the gateway exports (as tests/unit/test_dashboard.py does for
the dashboard)."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from gateway.errors import InfraError
from gateway.infra.promtool import ensure_promtool
from tests.deploy.crd import validate
from tests.deploy.test_manifests import DEPLOY
from tests.unit.test_dashboard import exposed_names, families

RULES = DEPLOY / "prometheus" / "binance-gateway-rules.yaml"
CRD = "monitoring.coreos.com_prometheusrules.yaml"
METRIC_NAME = re.compile(r"\bgateway_[a-z0-9_]+\b")
# What the operations docs promise an alert for, and the metric each one watches.
REQUIRED = {
    "BinanceGatewayStreamSilent": "gateway_frames_total",
    "BinanceGatewayShardFailing": "gateway_shards_failing",
    "BinanceGatewayProducerErrors": "gateway_producer_errors_total",
    "BinanceGatewayDeadLettersRising": "gateway_dead_letters_total",
    "BinanceGatewayLagHigh": "gateway_event_to_ack_seconds_bucket",
}


@pytest.fixture(scope="module")
def rule() -> dict:
    return yaml.safe_load(RULES.read_text())


def alerts(rule: dict) -> dict[str, dict]:
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def test_valid_for_the_prometheus_operator(rule):
    validate(rule, CRD)
    broken = copy.deepcopy(rule)
    broken["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"  # not a duration
    with pytest.raises(jsonschema.ValidationError):
        validate(broken, CRD)
    misspelt = copy.deepcopy(rule)
    misspelt["spec"]["groups"][0]["rules"][0]["annotation"] = {}
    with pytest.raises(jsonschema.ValidationError):
        validate(misspelt, CRD)


def test_every_promised_alert_watches_its_metric(rule):
    found = alerts(rule)
    for name, metric in REQUIRED.items():
        assert metric in found[name]["expr"], name
    for name, body in found.items():
        assert body["labels"]["severity"] in {"warning", "critical"}, name
        assert body["annotations"]["summary"] and body["for"], name


def test_rules_query_only_exported_metrics(rule):
    exported = set().union(*(exposed_names(f) for f in families()))
    used = {name for body in alerts(rule).values() for name in METRIC_NAME.findall(body["expr"])}
    assert used and sorted(used - exported) == []


def test_promtool_checks_the_rules(rule, tmp_path: Path):
    try:
        promtool = ensure_promtool()
    except InfraError as exc:
        pytest.skip(f"promtool unavailable: {exc}")
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    result = subprocess.run(
        [str(promtool), "check", "rules", str(rules_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts(rule))} rules found" in result.stdout
    broken = tmp_path / "broken.yaml"
    spec = copy.deepcopy(rule["spec"])
    spec["groups"][0]["rules"][0]["expr"] = "sum by (market (rate(gateway_frames_total[5m]))"
    broken.write_text(yaml.safe_dump(spec))
    failed = subprocess.run(
        [str(promtool), "check", "rules", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert failed.returncode != 0  # guards the check above
