"""Kafka and the schema registry in Docker containers, where a Docker engine exists.

CI and our machines have no engine, so the jar-based launchers (:mod:`gateway.infra.kafka`,
:mod:`gateway.infra.registry`) are the default; these helpers serve developers who have one. The
images match the jar versions: ``apache/kafka:4.0.2`` and ``apicurio/apicurio-registry:3.0.9``.
"""

from __future__ import annotations

import gc
import logging
import os
import tarfile
import time
import warnings
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.errors import InfraError
from gateway.infra.kafka import new_cluster_id

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

log = logging.getLogger(__name__)

KAFKA_IMAGE = "apache/kafka:4.0.2"
REGISTRY_IMAGE = "apicurio/apicurio-registry:3.0.9"
DEFAULT_TIMEOUT_S = 120.0

_KAFKA_CLIENT_PORT = 9092
_KAFKA_BROKER_PORT = 9093
_KAFKA_CONTROLLER_PORT = 9094
_REGISTRY_PORT = 8080
_START_SCRIPT = "/tmp/gateway-start.sh"
_DEFAULT_SOCKET = "/var/run/docker.sock"


@dataclass(frozen=True)
class StartedContainer:
    """A running container and the address clients use: bootstrap servers or registry URL."""

    container: DockerContainer
    address: str

    def stop(self) -> None:
        self.container.stop()


def docker_available(timeout: float = 2.0) -> bool:
    """True if a Docker engine answers a ping within ``timeout`` seconds; False on any failure.

    Finds the engine as testcontainers does (its properties file, ``DOCKER_HOST``, the current
    docker context), so a True here means the container helpers will reach the same engine.
    """
    try:
        import docker
        from docker.errors import DockerException
        from testcontainers.core.docker_client import get_docker_host
    except ImportError:
        return False
    host = get_docker_host()
    if host is None and not Path(_DEFAULT_SOCKET).exists():
        # The usual case here: no engine installed. Decided without the SDK's connect path.
        return False
    environment = dict(os.environ)
    if host:
        environment["DOCKER_HOST"] = host
    with warnings.catch_warnings():
        # docker-py does not close the socket of a failed connection; that ResourceWarning would
        # fail a test run with filterwarnings=error, and says nothing we do not report anyway.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env(timeout=timeout, environment=environment)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (DockerException, OSError, ValueError) as exc:
            log.debug("no Docker engine: %s", exc)
            return False
        finally:
            gc.collect()  # release the leaked socket while its warning is still ignored


def start_kafka_container(
    image: str = KAFKA_IMAGE, *, timeout: float = DEFAULT_TIMEOUT_S
) -> StartedContainer:
    """A single combined broker+controller from the ``apache/kafka`` image.

    testcontainers' ``KafkaContainer`` drives Confluent's image, whose scripts differ, so this is
    a generic container using the same trick: the container waits for a start script that we copy
    in once the mapped host port, which the advertised listener must name, is known.
    """
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    container = DockerContainer(image)
    container.with_exposed_ports(_KAFKA_CLIENT_PORT)
    for key, value in _kafka_env().items():
        container.with_env(key, value)
    container.with_command(
        ["bash", "-c", f"while [ ! -f {_START_SCRIPT} ]; do sleep 0.1; done; . {_START_SCRIPT}"]
    )
    try:
        container.start()
        host = container.get_container_host_ip()
        port = container.get_exposed_port(_KAFKA_CLIENT_PORT)
        advertised = f"PLAINTEXT://{host}:{port},BROKER://localhost:{_KAFKA_BROKER_PORT}"
        script = f"export KAFKA_ADVERTISED_LISTENERS={advertised}\nexec /etc/kafka/docker/run\n"
        _copy_file(container, script.encode(), _START_SCRIPT)
        wait = LogMessageWaitStrategy("Kafka Server started")
        wait.with_startup_timeout(int(timeout))
        wait.wait_until_ready(container)
    except Exception as exc:
        _stop_quietly(container)
        raise InfraError(f"Kafka container {image} failed to start: {exc}") from exc
    log.info("Kafka container %s ready at %s:%s", image, host, port)
    return StartedContainer(container, f"{host}:{port}")


def start_registry_container(
    image: str = REGISTRY_IMAGE, *, timeout: float = DEFAULT_TIMEOUT_S
) -> StartedContainer:
    """Apicurio Registry (in-memory storage); ``address`` is its ccompat/v7 URL."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import HttpWaitStrategy

    container = DockerContainer(image)
    container.with_exposed_ports(_REGISTRY_PORT)
    # Same settings as gateway.infra.registry gives the jar (environment-variable spelling).
    container.with_env("QUARKUS_HTTP_ACCESS_LOG_ENABLED", "false")
    container.with_env("APICURIO_REST_DELETION_GROUP_ENABLED", "true")
    container.with_env("APICURIO_REST_DELETION_ARTIFACT_ENABLED", "true")
    container.with_env("APICURIO_REST_DELETION_ARTIFACT_VERSION_ENABLED", "true")
    container.with_env("APICURIO_CCOMPAT_USE_CANONICAL_HASH", "true")
    wait = HttpWaitStrategy(_REGISTRY_PORT, "/apis/ccompat/v7/subjects").for_status_code(200)
    wait.with_startup_timeout(int(timeout))
    container.waiting_for(wait)
    began = time.monotonic()
    try:
        container.start()
        host = container.get_container_host_ip()
        port = container.get_exposed_port(_REGISTRY_PORT)
    except Exception as exc:
        _stop_quietly(container)
        raise InfraError(f"schema registry container {image} failed to start: {exc}") from exc
    url = f"http://{host}:{port}/apis/ccompat/v7"
    log.info("schema registry container ready at %s in %.1f s", url, time.monotonic() - began)
    return StartedContainer(container, url)


def _kafka_env() -> dict[str, str]:
    # Inside the container: PLAINTEXT is for clients on the host (advertised at the mapped port),
    # BROKER for the broker's own inter-broker traffic, CONTROLLER for KRaft.
    return {
        "CLUSTER_ID": new_cluster_id(),
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": (
            f"PLAINTEXT://0.0.0.0:{_KAFKA_CLIENT_PORT},BROKER://0.0.0.0:{_KAFKA_BROKER_PORT},"
            f"CONTROLLER://0.0.0.0:{_KAFKA_CONTROLLER_PORT}"
        ),
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
            "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT"
        ),
        "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@localhost:{_KAFKA_CONTROLLER_PORT}",
        # The same single-node settings as gateway.infra.kafka gives the jar-based broker.
        "KAFKA_NUM_PARTITIONS": "3",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "3",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS": "3",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
    }


def _copy_file(container: DockerContainer, content: bytes, path: str) -> None:
    """Put one file into a running container (the Docker API takes a tar archive)."""
    archive = BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo(name=path.lstrip("/"))
        info.size = len(content)
        info.mode = 0o644
        info.mtime = int(time.time())
        tar.addfile(info, BytesIO(content))
    archive.seek(0)
    container.get_wrapped_container().put_archive("/", archive)


def _stop_quietly(container: DockerContainer) -> None:
    try:
        container.stop()
    except Exception as exc:  # noqa: BLE001 - already failing; report the first error
        log.debug("could not remove a failed container: %s", exc)
