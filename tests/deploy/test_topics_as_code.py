"""Topics as code: the Strimzi resources come from the gateway's own catalogue, valid for Strimzi.

Each generated ``KafkaTopic`` / ``KafkaUser`` is checked against Strimzi's CRD schema
(deploy/crds/, unknown fields rejected), the example overlay's committed resources equal a fresh
generation from its configuration, and the ACLs give each user exactly its share.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from gateway.commands.strimzi import resources
from gateway.commands.topics import settings_catalogue, shard_count, strimzi_yaml
from gateway.infra.kustomize import render
from gateway.settings import GatewaySettings, load_settings
from gateway.topic_catalogue import TopicRole
from tests.deploy.crd import validate
from tests.deploy.test_manifests import OVERLAY

CRD_OF = {"KafkaTopic": "strimzi-kafkatopic.yaml", "KafkaUser": "strimzi-kafkauser.yaml"}
STRIMZI = OVERLAY / "strimzi"
DATA = re.compile(r"^binance\..*")  # what a Kafka Connect sink of the data would subscribe


@pytest.fixture
def overlay_settings(monkeypatch: pytest.MonkeyPatch) -> GatewaySettings:
    monkeypatch.setenv("GATEWAY_KAFKA__SECURITY__PASSWORD", "unused")
    return load_settings(OVERLAY / "gateway.yaml")


@pytest.fixture
def generated(overlay_settings: GatewaySettings) -> list[dict[str, Any]]:
    return resources(overlay_settings, settings_catalogue(overlay_settings), cluster="kafka")


def test_every_generated_resource_is_valid_for_strimzi(generated: list[dict[str, Any]]) -> None:
    assert {r["kind"] for r in generated} == {"KafkaTopic", "KafkaUser"}
    for resource in generated:
        validate(resource, CRD_OF[resource["kind"]])


def test_validation_rejects_what_strimzi_would(generated: list[dict[str, Any]]) -> None:
    # Guards the check above: a misspelt field, a bad enum, a missing required field all fail.
    topic = copy.deepcopy(next(r for r in generated if r["kind"] == "KafkaTopic"))
    topic["spec"]["replica"] = 3
    user = copy.deepcopy(next(r for r in generated if r["kind"] == "KafkaUser"))
    user["spec"]["authorization"]["acls"][0]["operations"] = ["Publish"]
    missing = copy.deepcopy(user)
    del missing["spec"]["authorization"]["acls"][0]["resource"]["type"]
    for bad, crd in [
        (topic, CRD_OF["KafkaTopic"]),
        (user, CRD_OF["KafkaUser"]),
        (missing, CRD_OF["KafkaUser"]),
    ]:
        with pytest.raises(jsonschema.ValidationError):
            validate(bad, crd)


def test_overlay_carries_the_current_generation(overlay_settings: GatewaySettings) -> None:
    committed = (STRIMZI / "topics.yaml").read_text()
    assert committed == strimzi_yaml(overlay_settings, cluster="kafka"), (
        "deploy/k8s/overlays/example/strimzi/topics.yaml is stale: regenerate it with the "
        "command in its kustomization.yaml"
    )


def test_overlay_lets_the_platform_own_the_topics(overlay_settings: GatewaySettings) -> None:
    kafka = overlay_settings.kafka
    assert kafka.create_topics is False
    assert kafka.min_insync_replicas == 2 and kafka.replication_factor == 3


def test_rendered_strimzi_kustomization_is_the_catalogue_in_kafkas_namespace(
    overlay_settings: GatewaySettings,
) -> None:
    docs = render(STRIMZI)
    topics = {d["spec"]["topicName"]: d for d in docs if d["kind"] == "KafkaTopic"}
    catalogue = {spec.name: spec for spec in settings_catalogue(overlay_settings)}
    assert topics.keys() == catalogue.keys()
    for name, spec in catalogue.items():
        assert topics[name]["spec"]["partitions"] == spec.partitions
        assert topics[name]["spec"]["replicas"] == spec.replicas == 3
        assert topics[name]["spec"]["config"]["min.insync.replicas"] == "2"
    assert topics["binance.spot.depth_snapshot"]["spec"]["config"]["cleanup.policy"] == (
        "compact,delete"
    )
    assert topics["binance.usdm.book_snapshot"]["spec"]["config"]["cleanup.policy"] == (
        "compact,delete"
    )
    assert "cleanup.policy" not in topics["binance.spot.trade"]["spec"]["config"]
    assert {d["metadata"]["namespace"] for d in docs} == {"kafka"}
    assert {d["metadata"]["labels"]["strimzi.io/cluster"] for d in docs} == {"kafka"}


def test_only_avro_data_topics_match_the_data_prefix(overlay_settings: GatewaySettings) -> None:
    specs = settings_catalogue(overlay_settings)
    internal = [s.name for s in specs if s.role is TopicRole.INTERNAL]
    assert internal == ["_binance.control"]
    assert [s.name for s in specs if DATA.match(s.name)] == [
        s.name for s in specs if s.role is TopicRole.DATA
    ]
    [control] = [s for s in specs if s.role is TopicRole.INTERNAL]
    assert control.partitions == shard_count(overlay_settings)
    assert control.config["cleanup.policy"] == "compact"


def _allowed(user: dict[str, Any], resource_type: str, name: str, operation: str) -> bool:
    for acl in user["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        matches = (
            name.startswith(resource["name"])
            if resource["patternType"] == "prefix"
            else name == resource["name"]
        )
        if resource["type"] == resource_type and matches and operation in acl["operations"]:
            return True
    return False


def test_acls_give_the_gateway_and_the_readers_each_their_share(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GATEWAY_KAFKA__SECURITY__PASSWORD", "unused")
    config = tmp_path / "gateway.yaml"
    monkeypatch.setenv("DESK_A_KEY", "key")
    monkeypatch.setenv("DESK_A_SECRET", "secret")
    accounts = (
        "accounts:\n  - {alias: desk-a, market: usdm, api_key_env: DESK_A_KEY,"
        " secret_env: DESK_A_SECRET}\n"
    )
    config.write_text((OVERLAY / "gateway.yaml").read_text() + accounts)
    settings = load_settings(config)
    specs = settings_catalogue(settings)
    docs = resources(settings, specs, cluster="kafka")
    users = {d["metadata"]["name"]: d for d in docs if d["kind"] == "KafkaUser"}
    gateway, readers = users["binance-gateway"], users["binance-readers"]
    data = [s.name for s in specs if s.role is TopicRole.DATA]
    assert "binance.usdm.account.desk-a" in data
    for topic in data:
        assert _allowed(gateway, "topic", topic, "Write"), topic
        assert _allowed(gateway, "topic", topic, "Read"), topic  # resume after the last id
        public = ".account." not in topic
        assert _allowed(readers, "topic", topic, "Read") is public, topic
        assert not _allowed(readers, "topic", topic, "Write"), topic
    for op in ("Read", "Write"):
        assert _allowed(gateway, "topic", "_binance.control", op)
        assert not _allowed(readers, "topic", "_binance.control", op)
    assert _allowed(gateway, "group", "_binance.workers", "Read")
    assert _allowed(readers, "group", "binance-readers-flink", "Read")
    assert not _allowed(readers, "group", "_binance.workers", "Read")
    # create_topics: false: the gateway may not create topics the platform owns.
    assert not any(
        "Create" in acl["operations"] for acl in gateway["spec"]["authorization"]["acls"]
    )
    assert yaml.safe_load_all(strimzi_yaml(settings, cluster="kafka"))


def test_the_command_prints_what_the_overlay_carries() -> None:
    # A process of its own: the command configures logging, which must not leak into other tests.
    env = {**os.environ, "GATEWAY_KAFKA__SECURITY__PASSWORD": "unused"}
    config = str(OVERLAY / "gateway.yaml")

    def gateway(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "gateway", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert gateway("topics", "--strimzi", "--cluster", "kafka", "-c", config) == (
        (STRIMZI / "topics.yaml").read_text()
    )
    rows = [line.split("\t") for line in gateway("topics", "-c", config).splitlines()]
    assert ["_binance.control", "internal"] in [row[:2] for row in rows]
    assert {row[1] for row in rows} == {"data", "internal"}
