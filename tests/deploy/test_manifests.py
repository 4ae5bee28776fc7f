"""deploy/: the Kubernetes manifests as kustomize renders them, the compose file and the Dockerfile.

Rendered documents are checked against the Kubernetes schemas (strict: an unknown field is an
error), the configuration they carry goes through the gateway's own ``load_settings`` with the
environment the pod would have, and the pieces agree with each other: ports, paths, user, grace
period. Rendering needs kubectl or Go (``gateway.infra.kustomize``); it never skips.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from gateway.errors import ConfigError
from gateway.infra.docker import KAFKA_IMAGE, REGISTRY_IMAGE
from gateway.infra.kustomize import render
from gateway.settings import GatewaySettings, load_settings
from tests.deploy import crd

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
BASE, OVERLAY = DEPLOY / "k8s" / "base", DEPLOY / "k8s" / "overlays" / "example"
KUBERNETES_VERSION = "1.37.0"
# Custom resources the validator has no schema for: checked by hand below, or against the CRD
# carried in deploy/crds.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_prometheusrules.yaml"
}
CONFIG_PATH = "/etc/binance-gateway/gateway.yaml"
SECRETS_DIR = "/etc/binance-gateway/secrets"
STATUS_PORT = 8000
POD_NAME = "binance-gateway-6f7c9d8b5-x2x7q"
NON_ROOT_UID = 10001

Doc = dict[str, Any]


@pytest.fixture(scope="module", params=["base", "overlay"])
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Doc]]:
    return request.param, render(BASE if request.param == "base" else OVERLAY)


@pytest.fixture(scope="module")
def base_docs() -> list[Doc]:
    return render(BASE)


@pytest.fixture(scope="module")
def overlay_docs() -> list[Doc]:
    return render(OVERLAY)


def only(docs: list[Doc], kind: str) -> Doc:
    [doc] = [d for d in docs if d["kind"] == kind]
    return doc


def gateway_container(docs: list[Doc]) -> Doc:
    container: Doc
    [container] = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def pod_environment(container: Doc, *, secrets_exist: bool) -> dict[str, str]:
    """The GATEWAY_ variables the container would see; Secrets as placeholders, or absent."""
    env = {}
    for var in container.get("env", []):
        source = var.get("valueFrom", {})
        if "value" in var:
            env[var["name"]] = var["value"]
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[var["name"]] = POD_NAME
        elif "secretKeyRef" in source:
            if secrets_exist:
                env[var["name"]] = f"placeholder-{source['secretKeyRef']['key']}"
            else:
                assert source["secretKeyRef"].get("optional") is True, var["name"]
        else:
            raise AssertionError(f"unexpected env source for {var['name']}: {source}")
    return env


def load_rendered_config(
    docs: list[Doc], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, secrets_exist: bool
) -> GatewaySettings:
    config = tmp_path / "gateway.yaml"
    config.write_text(only(docs, "ConfigMap")["data"]["gateway.yaml"])
    for name in [n for n in os.environ if n.startswith("GATEWAY_")]:
        monkeypatch.delenv(name)
    for name, value in pod_environment(
        gateway_container(docs), secrets_exist=secrets_exist
    ).items():
        monkeypatch.setenv(name, value)
    return load_settings(config)


# -- schemas ---------------------------------------------------------------------------------------


def test_every_rendered_document_is_valid_kubernetes(rendered: tuple[str, list[Doc]]) -> None:
    _, docs = rendered
    assert {d["kind"] for d in docs} >= {
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    }
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            assert doc["metadata"]["name"] and doc["spec"], doc["kind"]
            continue
        if (doc["apiVersion"], doc["kind"]) in CRD_KINDS:
            crd.validate(doc, CRD_KINDS[doc["apiVersion"], doc["kind"]])
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_strict_validation_rejects_unknown_fields(base_docs: list[Doc]) -> None:
    # Guards the check above: a misspelt field must fail, not pass as "extra".
    deployment = copy.deepcopy(only(base_docs, "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_overlay_carries_the_alert_rules(overlay_docs: list[Doc]) -> None:
    rule = only(overlay_docs, "PrometheusRule")
    assert rule["metadata"]["namespace"] == "market-data"
    assert (
        rule["metadata"]["labels"]["release"]
        == (only(overlay_docs, "ServiceMonitor")["metadata"]["labels"]["release"])
    )


def test_service_monitor_scrapes_the_metrics_service(overlay_docs: list[Doc]) -> None:
    monitor, service = only(overlay_docs, "ServiceMonitor"), only(overlay_docs, "Service")
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    port_names = {port["name"] for port in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= port_names
    assert {e["path"] for e in monitor["spec"]["endpoints"]} == {"/metrics"}


# -- the configuration the pod gets ----------------------------------------------------------------


def test_base_config_loads_as_the_pod_would_without_secrets(
    base_docs: list[Doc], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_rendered_config(base_docs, tmp_path, monkeypatch, secrets_exist=False)
    assert settings.gateway_id == POD_NAME
    assert settings.status.port == STATUS_PORT
    assert settings.kafka.security.protocol == "PLAINTEXT"


def test_overlay_config_loads_with_the_kafka_secret(
    overlay_docs: list[Doc], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_rendered_config(overlay_docs, tmp_path, monkeypatch, secrets_exist=True)
    assert settings.gateway_id == POD_NAME
    assert settings.kafka.security.protocol == "SASL_SSL"
    assert settings.kafka.security.sasl_password() == "placeholder-password"
    assert settings.status.port == STATUS_PORT


def test_overlay_without_the_kafka_secret_fails_at_start_up(
    overlay_docs: list[Doc], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="exactly one of password and password_file"):
        load_rendered_config(overlay_docs, tmp_path, monkeypatch, secrets_exist=False)


@pytest.mark.parametrize("config", [BASE / "gateway.yaml", OVERLAY / "gateway.yaml"])
def test_commented_account_example_is_valid_and_reads_the_mounted_secret(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uncommented, the example account loads, its key files under the Secret's mount."""
    text = config.read_text()
    start = text.index("# accounts:")
    block = "\n".join(line.removeprefix("# ") for line in text[start:].splitlines())
    files = re.findall(r"_file: (\S+)", block)
    assert files and all(f.startswith(SECRETS_DIR + "/") for f in files)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    # The settings check at start-up that a private key is a PEM of the configured kind.
    private_pem = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    for path in files:
        content = private_pem if "private" in path else "placeholder-key\n"
        (secrets / Path(path).name).write_text(content)
    config_copy = tmp_path / "gateway.yaml"
    config_copy.write_text(text[:start] + block.replace(SECRETS_DIR, str(secrets)) + "\n")
    if "protocol: SASL" in text:
        monkeypatch.setenv("GATEWAY_KAFKA__SECURITY__PASSWORD", "placeholder-password")
    settings = load_settings(config_copy)
    assert [account.alias for account in settings.accounts] == ["desk-a"]


def test_compose_config_loads() -> None:
    settings = load_settings(DEPLOY / "compose" / "gateway.yaml")
    assert settings.status.port == STATUS_PORT


# -- the Deployment --------------------------------------------------------------------------------


def test_container_runs_locked_down_as_non_root(rendered: tuple[str, list[Doc]]) -> None:
    _, docs = rendered
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    container = gateway_container(docs)
    security = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == NON_ROOT_UID
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    account = only(docs, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_probes_hit_healthz_and_readyz_on_the_status_port(rendered: tuple[str, list[Doc]]) -> None:
    _, docs = rendered
    container = gateway_container(docs)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}

    def probe(name: str) -> tuple[str, int]:
        get = container[name]["httpGet"]
        return get["path"], ports.get(get["port"], get["port"])

    assert probe("livenessProbe") == ("/healthz", STATUS_PORT)
    assert probe("readinessProbe") == ("/readyz", STATUS_PORT)
    assert probe("startupProbe") == ("/healthz", STATUS_PORT)
    annotations = only(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(STATUS_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_config_and_secrets_are_mounted_where_the_gateway_reads_them(
    rendered: tuple[str, list[Doc]],
) -> None:
    _, docs = rendered
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    container = gateway_container(docs)
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert container["args"] == ["run", "--config", CONFIG_PATH]
    config_volume = volumes[mounts[CONFIG_PATH]["name"]]
    assert config_volume["configMap"]["name"] == only(docs, "ConfigMap")["metadata"]["name"]
    assert mounts[SECRETS_DIR]["readOnly"] is True
    assert volumes[mounts[SECRETS_DIR]["name"]]["secret"]["secretName"] == (
        "binance-gateway-accounts"
    )
    kafka_secret = [
        var["valueFrom"]["secretKeyRef"]["name"]
        for var in container["env"]
        if var["name"] == "GATEWAY_KAFKA__SECURITY__PASSWORD"
    ]
    assert kafka_secret == ["binance-gateway-kafka"]


def test_grace_period_outlasts_the_drain(
    rendered: tuple[str, list[Doc]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, docs = rendered
    sasl = "protocol: SASL" in only(docs, "ConfigMap")["data"]["gateway.yaml"]
    settings = load_rendered_config(docs, tmp_path, monkeypatch, secrets_exist=sasl)
    grace_s = only(docs, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    # A drain flushes the producer, which waits at most request_timeout_ms for Kafka.
    assert grace_s >= settings.kafka.request_timeout_ms / 1000 + 15


def test_workers_are_spread_and_disrupted_one_at_a_time(rendered: tuple[str, list[Doc]]) -> None:
    _, docs = rendered
    deployment = only(docs, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert "kubernetes.io/hostname" in {c["topologyKey"] for c in spread}
    for constraint in spread:
        assert constraint["labelSelector"]["matchLabels"].items() <= labels.items()
    budget = only(docs, "PodDisruptionBudget")["spec"]
    assert budget["maxUnavailable"] == 1
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    service = only(docs, "Service")["spec"]
    assert service["selector"].items() <= labels.items()
    container_ports = {p["name"] for p in gateway_container(docs)["ports"]}
    assert {p["targetPort"] for p in service["ports"]} <= container_ports


def test_overlay_sets_namespace_image_and_its_own_config(
    base_docs: list[Doc], overlay_docs: list[Doc]
) -> None:
    assert {d["metadata"].get("namespace") for d in overlay_docs} == {"market-data"}
    assert gateway_container(base_docs)["image"] == "binance-gateway:dev"
    assert gateway_container(overlay_docs)["image"].endswith("/binance-gateway:0.1.0")
    base_config = only(base_docs, "ConfigMap")
    overlay_config = only(overlay_docs, "ConfigMap")
    assert base_config["data"] != overlay_config["data"]
    # The generated name carries a hash of the content: a config change rolls the pods.
    assert base_config["metadata"]["name"] != overlay_config["metadata"]["name"]


# -- compose ---------------------------------------------------------------------------------------


def test_compose_runs_the_demo_pipeline_on_one_config() -> None:
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"kafka", "registry", "simulator", "gateway"} <= services.keys()
    assert services["kafka"]["image"] == KAFKA_IMAGE
    assert services["registry"]["image"] == REGISTRY_IMAGE
    gateway = services["gateway"]
    build = gateway["build"]
    assert (DEPLOY / "compose" / build["context"] / build["dockerfile"]).resolve() == (
        DEPLOY / "docker" / "Dockerfile"
    )
    assert gateway["command"] == ["run", "--config", CONFIG_PATH]
    assert f"./gateway.yaml:{CONFIG_PATH}:ro" in gateway["volumes"]
    for name, condition in gateway["depends_on"].items():
        assert condition == {"condition": "service_healthy"}
        assert "healthcheck" in services[name], name
    assert set(gateway["depends_on"]) == {"kafka", "registry", "simulator"}

    settings = load_settings(DEPLOY / "compose" / "gateway.yaml")
    [market] = settings.binance.markets.values()
    simulator = services["simulator"]["command"]
    assert market.stream_url == f"ws://simulator:{simulator[simulator.index('--ws-port') + 1]}"
    assert market.rest_url == f"http://simulator:{simulator[simulator.index('--rest-port') + 1]}"
    assert simulator[simulator.index("--host") + 1] == "0.0.0.0"
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"PLAINTEXT://{settings.kafka.bootstrap_servers}" in advertised.split(",")
    assert settings.registry.url == "http://registry:8080/apis/ccompat/v7"
    assert f"{STATUS_PORT}:{settings.status.port}" in gateway["ports"]


# -- the image -------------------------------------------------------------------------------------


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split into stages at each FROM."""
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    lines = [line for line in text.replace("\\\n", " ").splitlines() if line.strip()]
    instructions = [line.strip() for line in lines if not line.lstrip().startswith("#")]
    stages: list[list[str]] = []
    for instruction in instructions:
        if instruction.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_dockerfile_is_multi_stage_and_runs_as_non_root() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    assert all(re.match(r"FROM \S+ AS \w+", stage[0], re.IGNORECASE) for stage in stages)
    final = stages[-1]
    [user] = [i.split()[1] for i in final if i.upper().startswith("USER ")]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) == NON_ROOT_UID
    assert 'ENTRYPOINT ["gateway"]' in final
    assert f'CMD ["run", "--config", "{CONFIG_PATH}"]' in final
    assert f"EXPOSE {STATUS_PORT}" in final
    assert any(i.startswith("COPY --from=builder /opt/venv") for i in final)
    build_tools = re.compile(r"\b(apt-get|apk|gcc|build-essential|pip install)\b")
    assert not [i for i in final if build_tools.search(i)]


def test_image_carries_the_schemas_where_the_package_looks_for_them() -> None:
    # gateway.records.avro: SCHEMAS_DIR = <avro.py>.parents[2] / "schemas", which for an
    # installed package is <site-packages>/schemas.
    site_packages = Path("/opt/venv/lib/python3.11/site-packages")
    expected = (site_packages / "gateway" / "records" / "avro.py").parents[2] / "schemas"
    copies = [i.split()[1:] for stage in dockerfile_stages() for i in stage if i.startswith("COPY")]
    assert ["schemas", str(expected)] in copies
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert {"*", "!gateway/", "!schemas/", "!pyproject.toml", "!README.md"} <= set(ignore)


def test_image_builds_and_ships_the_compiled_record_writer() -> None:
    builder, runtime = dockerfile_stages()[0], dockerfile_stages()[-1]
    # The builder has a compiler (its own base), the runtime keeps a compiler-free one.
    assert builder[0].split()[1] == "${BUILDER_IMAGE}"
    assert runtime[0].split()[1] == "${PYTHON_IMAGE}"
    [install] = [i for i in builder if "pip install --no-deps --no-build-isolation" in i]
    # Required, not optional (setup.py), and checked where the installed package is imported.
    assert "GATEWAY_REQUIRE_COMPILED=1 " in install
    assert "GATEWAY_REQUIRE_COMPILED" in (REPO / "setup.py").read_text()
    assert "assert codec.NATIVE" in install
    assert "pip uninstall -y -q cython setuptools wheel pip" in install
    assert any("assert codec.NATIVE" in i for i in runtime if i.startswith("RUN "))
    assert any(i.startswith("COPY ") and "setup.py" in i.split() for i in builder)
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    # setup.py in; the host's in-place build of the extension (make install) out.
    assert {"!setup.py", "gateway/**/*.so", "gateway/**/*.c"} <= set(ignore)


def test_the_lock_pins_every_build_requirement() -> None:
    # --no-build-isolation --no-index: what pyproject.toml's [build-system] requires must be in
    # the lock, or the builder builds without it (without Cython: no compiled record writer).
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    docker = DEPLOY / "docker"
    wanted = {line.strip() for line in (docker / "build-requirements.in").read_text().splitlines()}
    locked = re.findall(r"^([A-Za-z0-9_.-]+)==", (docker / "requirements.lock").read_text(), re.M)
    for requirement in requires:
        assert requirement in wanted
        name = re.split(r"[<>=!~ ;\[]", requirement)[0]
        assert name.lower() in {n.lower() for n in locked}, name
