"""deploy/helm: the Helm chart renders the kustomize base's objects, valid Kubernetes 1.37.

Both renderings are normalised for what differs by design and nothing else: Helm's own labels
(``helm.sh/chart``, ``app.kubernetes.io/instance``, ``version``, ``managed-by``), the ConfigMap's
name (kustomize appends a content hash; the chart keeps a fixed name and rolls the pods with a
``checksum/config`` annotation instead). After that the objects must be equal, field for field.
Helm comes from the PATH or is built from the Go module proxy (``gateway.infra.helm``); the test
skips only when neither Helm nor Go can be had, and says so.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.errors import InfraError
from gateway.infra.helm import CHART_DIR, KUBE_VERSION, helm, helm_command, render_chart
from gateway.infra.kustomize import render
from tests.deploy.test_manifests import BASE, only

Doc = dict[str, Any]
HELM_ONLY_LABELS = {
    "helm.sh/chart",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
}
CONFIG_HASH = re.compile(r"^(binance-gateway-config)-[a-z0-9]{10}$")


@pytest.fixture(scope="module")
def helm_ready() -> None:
    try:
        helm_command()
    except InfraError as exc:
        pytest.skip(f"no helm and none can be built: {exc}")


@pytest.fixture(scope="module")
def chart_docs(helm_ready: None) -> list[Doc]:
    return render_chart()


def _strip(labels: dict[str, str] | None) -> None:
    for key in HELM_ONLY_LABELS & set(labels or {}):
        del labels[key]  # type: ignore[union-attr]


def normalised(docs: list[Doc]) -> dict[tuple[str, str], Doc]:
    """Objects by (kind, name), without the differences that are there by design."""
    found = {}
    for original in docs:
        doc = copy.deepcopy(original)
        metadata = doc["metadata"]
        _strip(metadata.get("labels"))
        metadata["name"] = CONFIG_HASH.sub(r"\1", metadata["name"])
        if doc["kind"] == "ConfigMap":
            doc["data"] = {k: yaml.safe_load(v) for k, v in doc["data"].items()}
        spec = doc.get("spec", {})
        _strip(spec.get("selector", {}).get("matchLabels"))
        _strip(spec.get("selector"))  # a Service's selector is the label map itself
        template = spec.get("template")
        if template:
            _strip(template["metadata"]["labels"])
            template["metadata"]["annotations"].pop("checksum/config", None)
            pod = template["spec"]
            for constraint in pod.get("topologySpreadConstraints", []):
                _strip(constraint["labelSelector"]["matchLabels"])
            for volume in pod["volumes"]:
                if "configMap" in volume:
                    volume["configMap"]["name"] = CONFIG_HASH.sub(
                        r"\1", volume["configMap"]["name"]
                    )
        found[(doc["kind"], metadata["name"])] = doc
    return found


def test_chart_renders_the_kustomize_base_object_for_object(chart_docs: list[Doc]) -> None:
    from_chart, from_kustomize = normalised(chart_docs), normalised(render(BASE))
    assert sorted(from_chart) == sorted(from_kustomize)
    for key, doc in from_kustomize.items():
        assert from_chart[key] == doc, key


def test_every_chart_document_is_valid_kubernetes(chart_docs: list[Doc]) -> None:
    assert len(chart_docs) == 5
    for doc in chart_docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_selectors_carry_the_release_so_two_releases_never_share_pods(helm_ready: None) -> None:
    docs = render_chart("blue")
    deployment, service = only(docs, "Deployment"), only(docs, "Service")
    assert deployment["metadata"]["name"] == "blue-binance-gateway"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/instance"] == "blue"
    assert service["spec"]["selector"] == selector
    assert only(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    assert deployment["spec"]["template"]["metadata"]["labels"].items() >= selector.items()


def test_values_reach_the_objects_and_a_config_change_rolls_the_pods(
    helm_ready: None, chart_docs: list[Doc]
) -> None:
    docs = render_chart(
        set_values={
            "replicaCount": "5",
            "image.repository": "registry.example.com/trading/binance-gateway",
            "image.tag": "1.2.3",
            "config.kafka.topic_prefix": "prod",
        }
    )
    deployment = only(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 5
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/trading/binance-gateway:1.2.3"
    config = yaml.safe_load(only(docs, "ConfigMap")["data"]["gateway.yaml"])
    assert config["kafka"]["topic_prefix"] == "prod"
    checksum = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    before = only(chart_docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert checksum != before["checksum/config"]


def test_helm_lint_passes_strict(helm_ready: None) -> None:
    helm("lint", "--strict", "--kube-version", KUBE_VERSION, str(CHART_DIR))
