"""Real infrastructure for the whole test run: a Kafka broker and a schema registry.

Each session fixture picks, in order:

1. an external one from ``KAFKA_BOOTSTRAP`` / ``SCHEMA_REGISTRY_URL`` (for example what
   ``python -m gateway.infra up`` prints);
2. a container, if a Docker engine answers;
3. a local JVM from the Maven Central jars (``gateway.infra``), fetched with ``mvn`` on first use.

They never skip: a test that asks for Kafka gets a real one or fails with the reason.
``kafka_cluster_factory`` always starts local JVMs, since fault tests need to kill nodes.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from gateway.adapters.registry_settings import PROMISED_COMPATIBILITY
from gateway.infra.docker import docker_available, start_kafka_container, start_registry_container
from gateway.infra.kafka import KafkaCluster
from gateway.infra.registry import SchemaRegistry, set_global_compatibility

# CI shares two cores with Kafka and the registry: generation speed and per-example time vary too
# much for Hypothesis' timing checks to mean anything; correctness checks are unaffected.
settings.register_profile(
    "shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("shared-machine")

log = logging.getLogger(__name__)


@functools.cache
def _use_docker() -> bool:
    # Asked once per run: the ping costs up to its timeout when no engine exists.
    return docker_available()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a single-node Kafka shared by the session."""
    external = os.environ.get("KAFKA_BOOTSTRAP")
    if external:
        log.info("using the external Kafka at %s", external)
        yield external
    elif _use_docker():
        container = start_kafka_container()
        try:
            yield container.address
        finally:
            container.stop()
    else:
        with KafkaCluster(1) as cluster:
            yield cluster.bootstrap_servers


@pytest.fixture(scope="session")
def schema_registry_url() -> Iterator[str]:
    """Base URL of a Confluent-compatible schema registry (Apicurio's ``/apis/ccompat/v7``)."""
    external = os.environ.get("SCHEMA_REGISTRY_URL")
    if external:
        log.info("using the external schema registry at %s", external)
        yield external.rstrip("/")
    elif _use_docker():
        container = start_registry_container()
        try:
            # As a platform team would, and as gateway.infra's local registry does.
            set_global_compatibility(container.address, PROMISED_COMPATIBILITY)
            yield container.address
        finally:
            container.stop()
    else:
        with SchemaRegistry() as registry:
            yield registry.url


@pytest.fixture
def kafka_cluster_factory() -> Iterator[Callable[..., KafkaCluster]]:
    """Starts fresh local clusters for one test and stops them afterwards.

    ``kafka_cluster_factory(nodes=3, **KafkaCluster_kwargs)`` returns a started cluster. It blocks
    for a few seconds: from an async test, call it through ``asyncio.to_thread``.
    """
    clusters: list[KafkaCluster] = []

    def start(nodes: int = 3, **kwargs: Any) -> KafkaCluster:
        cluster = KafkaCluster(nodes, **kwargs)
        clusters.append(cluster)
        return cluster.start()

    yield start
    for cluster in reversed(clusters):
        cluster.stop()
