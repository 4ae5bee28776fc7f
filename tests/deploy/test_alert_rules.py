"""The alert rules beside the dashboard: valid for the Prometheus Operator, lint-clean for
promtool, and querying only metrics the gateway exports (as tests/unit/test_dashboard.py does for
the dashboard)."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

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
SCENARIOS = Path(__file__).with_name("alert_scenarios.yaml")
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
def rule() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return document


def alerts(rule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def test_valid_for_the_prometheus_operator(rule: dict[str, Any]) -> None:
    validate(rule, CRD)
    broken = copy.deepcopy(rule)
    broken["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"  # not a duration
    with pytest.raises(jsonschema.ValidationError):
        validate(broken, CRD)
    misspelt = copy.deepcopy(rule)
    misspelt["spec"]["groups"][0]["rules"][0]["annotation"] = {}
    with pytest.raises(jsonschema.ValidationError):
        validate(misspelt, CRD)


def test_every_promised_alert_watches_its_metric(rule: dict[str, Any]) -> None:
    found = alerts(rule)
    for name, metric in REQUIRED.items():
        assert metric in found[name]["expr"], name
    for name, body in found.items():
        assert body["labels"]["severity"] in {"warning", "critical"}, name
        assert body["annotations"]["summary"] and body["for"], name


def test_rules_query_only_exported_metrics(rule: dict[str, Any]) -> None:
    exported = set().union(*(exposed_names(f) for f in families()))
    used = {name for body in alerts(rule).values() for name in METRIC_NAME.findall(body["expr"])}
    assert used and sorted(used - exported) == []


@pytest.fixture(scope="module")
def promtool() -> Path:
    try:
        return ensure_promtool()
    except InfraError as exc:
        pytest.skip(f"promtool unavailable: {exc}")


def test_promtool_checks_the_rules(rule: dict[str, Any], promtool: Path, tmp_path: Path) -> None:
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


def test_each_alert_fires_on_trouble_and_none_on_a_healthy_gateway(
    rule: dict[str, Any], promtool: Path, tmp_path: Path
) -> None:
    spec = copy.deepcopy(rule["spec"])
    for group in spec["groups"]:
        for body in group["rules"]:
            body.pop("annotations")  # prose; promtool would compare it word for word
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    scenarios = yaml.safe_load(SCENARIOS.read_text())
    tested = {t["alertname"] for case in scenarios["tests"] for t in case["alert_rule_test"]}
    assert tested == set(alerts(rule))  # every alert has a scenario
    scenarios["rule_files"] = ["rules.yaml"]
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(scenarios))
    result = subprocess.run(
        [str(promtool), "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
