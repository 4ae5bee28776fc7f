"""Topics and users as code: Strimzi ``KafkaTopic`` and ``KafkaUser`` resources from the catalogue.

``gateway topics --strimzi`` prints them for a platform whose Kafka is run by the Strimzi operator
(``kafka.strimzi.io/v1``, the API of Strimzi 1.x); the gateway then runs with
``kafka.create_topics: false``. Two users:

* the gateway: writes (and reads, to resume after the last trade id Kafka holds) the data topics,
  reads and writes its internal topics, and joins its workers' group;
* the readers: read the public data topics, one literal ACL each (the private account topics
  are granted per team, see docs/accounts.md), in consumer groups named ``<readers>…``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from gateway.settings import GatewaySettings
from gateway.topic_catalogue import ACCOUNT_KIND, TopicRole, TopicSpec, workers_group

API_VERSION = "kafka.strimzi.io/v1"
CLUSTER_LABEL = "strimzi.io/cluster"
DEFAULT_READERS = "binance-readers"
DEFAULT_GATEWAY_USER = "binance-gateway"
DEFAULT_PASSWORD_SECRET = "binance-gateway-kafka"

Resource = dict[str, Any]
_NOT_DNS = re.compile(r"[^a-z0-9.-]+")


def resource_name(topic: str) -> str:
    """A Kubernetes name for a topic: lowercase, ``_`` -> ``-``, no leading or trailing dot/dash.

    Kafka allows ``_`` and capitals, Kubernetes does not; the real name is ``spec.topicName``.
    An internal topic (``_binance.control``) reads ``internal-binance.control``, so that it is
    never mistaken for a data prefix's topic.
    """
    name = _NOT_DNS.sub("-", topic.lower()).strip(".-")
    return f"internal-{name}" if topic.startswith("_") else name


def kafka_topic(spec: TopicSpec, cluster: str, namespace: str | None) -> Resource:
    return {
        "apiVersion": API_VERSION,
        "kind": "KafkaTopic",
        "metadata": _metadata(resource_name(spec.name), cluster, namespace, spec.role),
        "spec": {
            "topicName": spec.name,
            "partitions": spec.partitions,
            "replicas": spec.replicas,
            "config": dict(sorted(spec.config.items())),
        },
    }


def _metadata(name: str, cluster: str, namespace: str | None, role: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {
            CLUSTER_LABEL: cluster,
            "app.kubernetes.io/part-of": "binance-gateway",
            "binance-gateway/role": str(role),
        },
    }
    if namespace:
        metadata["namespace"] = namespace
    return metadata


def _acl(kind: str, name: str, pattern: str, operations: Sequence[str]) -> dict[str, Any]:
    return {
        "resource": {"type": kind, "name": name, "patternType": pattern},
        "operations": list(operations),
    }


def _authentication(settings: GatewaySettings, password_secret: str | None) -> dict[str, Any]:
    """The gateway's login as its configuration has it: SCRAM-SHA-512 or a TLS client cert."""
    security = settings.kafka.security
    if security.protocol.startswith("SASL") and security.sasl_mechanism == "SCRAM-SHA-512":
        login: dict[str, Any] = {"type": "scram-sha-512"}
        if password_secret:
            # The password the gateway's pod already reads (GATEWAY_KAFKA__SECURITY__PASSWORD).
            login["password"] = {
                "valueFrom": {"secretKeyRef": {"name": password_secret, "key": "password"}}
            }
        return login
    return {"type": "tls"}


def gateway_user(
    settings: GatewaySettings,
    specs: Sequence[TopicSpec],
    cluster: str,
    namespace: str | None,
    password_secret: str | None = DEFAULT_PASSWORD_SECRET,
) -> Resource:
    kafka = settings.kafka
    create = ["Create"] if kafka.create_topics else []
    acls = [
        # Read too: a worker resumes each symbol's trades after the last id Kafka holds.
        _acl("topic", f"{kafka.topic_prefix}.", "prefix", ["Describe", "Read", "Write", *create]),
    ]
    internal = [spec for spec in specs if spec.role is TopicRole.INTERNAL]
    internal_ops = ["Describe", "Read", "Write", *create, *(["Alter"] if create else [])]
    if internal:
        acls.append(_acl("topic", f"{kafka.internal_prefix}.", "prefix", internal_ops))
        acls += [
            _acl("topic", spec.name, "literal", internal_ops)
            for spec in internal
            if not spec.name.startswith(f"{kafka.internal_prefix}.")
        ]
        acls.append(_acl("group", workers_group(settings), "literal", ["Describe", "Read"]))
    name = kafka.security.username or DEFAULT_GATEWAY_USER
    return {
        "apiVersion": API_VERSION,
        "kind": "KafkaUser",
        "metadata": _metadata(name, cluster, namespace, "gateway"),
        "spec": {
            "authentication": _authentication(settings, password_secret),
            "authorization": {"type": "simple", "acls": acls},
        },
    }


def readers_user(
    settings: GatewaySettings,
    specs: Sequence[TopicSpec],
    cluster: str,
    namespace: str | None,
    name: str = DEFAULT_READERS,
) -> Resource:
    public = [spec for spec in specs if spec.role is TopicRole.DATA and spec.kind != ACCOUNT_KIND]
    acls = [_acl("topic", spec.name, "literal", ["Describe", "Read"]) for spec in public]
    acls.append(_acl("group", name, "prefix", ["Describe", "Read"]))
    login = _authentication(settings, None)
    return {
        "apiVersion": API_VERSION,
        "kind": "KafkaUser",
        "metadata": _metadata(name, cluster, namespace, "readers"),
        "spec": {"authentication": login, "authorization": {"type": "simple", "acls": acls}},
    }


def resources(
    settings: GatewaySettings,
    specs: Sequence[TopicSpec],
    *,
    cluster: str,
    namespace: str | None = None,
    readers: str = DEFAULT_READERS,
    password_secret: str | None = DEFAULT_PASSWORD_SECRET,
) -> list[Resource]:
    """Every topic of the catalogue, then the gateway's user and the readers' user."""
    topics = [kafka_topic(spec, cluster, namespace) for spec in specs]
    names = [topic["metadata"]["name"] for topic in topics]
    if len(set(names)) != len(names):
        raise ValueError(f"two topics map to one resource name: {sorted(names)}")
    return [
        *topics,
        gateway_user(settings, specs, cluster, namespace, password_secret),
        readers_user(settings, specs, cluster, namespace, readers),
    ]
