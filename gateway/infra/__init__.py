"""Local infrastructure for tests, ``make`` and ``gateway demo``: a real Kafka and schema registry.

Without Docker (our machines, CI) both run as JVMs from Maven Central artifacts:

- :class:`KafkaCluster` — N KRaft nodes from the jars ``deploy/kafka/pom.xml`` fetches;
- :class:`SchemaRegistry` — Apicurio Registry 3.0.9, Confluent-compatible API at ``.url``;
- :func:`fetch_all` — fetch both with ``mvn`` (the launchers also fetch on first use).

:mod:`gateway.infra.docker` has container equivalents; ``python -m gateway.infra`` is the CLI.
"""

from gateway.infra.kafka import KafkaCluster
from gateway.infra.maven import ensure_kafka_libs, ensure_registry_app, fetch_all
from gateway.infra.registry import SchemaRegistry

__all__ = [
    "KafkaCluster",
    "SchemaRegistry",
    "ensure_kafka_libs",
    "ensure_registry_app",
    "fetch_all",
]
