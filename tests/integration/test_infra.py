"""The launchers in gateway.infra give a Kafka and a registry that behave like the real thing."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

RECORDS = 300


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def create_topic(
    bootstrap: str, topic: str, *, partitions: int, replication: int, **configs: str
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(topic, partitions, replication, topic_configs=configs)]
        )
    finally:
        await admin.close()
    errors = [(name, code) for name, code, *_ in response.topic_errors if code != 0]
    assert not errors, f"create_topics failed: {errors}"


def idempotent_producer(bootstrap: str, **overrides: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        compression_type="lz4",
        linger_ms=5,
        **overrides,
    )


async def read_partition(bootstrap: str, topic: str, partition: int, count: int) -> list[bytes]:
    """The first ``count`` values of one partition, read without a consumer group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        values: list[bytes] = []
        async with asyncio.timeout(30):
            while len(values) < count:
                batch = await consumer.getmany(tp, timeout_ms=500)
                values += [record.value for record in batch.get(tp, [])]
        return values
    finally:
        await consumer.stop()


@pytest.mark.kafka
async def test_single_node_takes_idempotent_lz4_writes_and_serves_a_consumer_group(
    kafka_bootstrap: str,
) -> None:
    topic = unique_topic("infra-single")
    await create_topic(kafka_bootstrap, topic, partitions=3, replication=1)
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(RECORDS)}

    producer = idempotent_producer(kafka_bootstrap)
    await producer.start()
    try:
        pending = [await producer.send(topic, key=k, value=v) for k, v in sent.items()]
        acked = await asyncio.gather(*pending)
    finally:
        await producer.stop()
    assert {meta.partition for meta in acked} == {0, 1, 2}

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"group-{topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        received: dict[bytes, bytes] = {}
        async with asyncio.timeout(30):
            while len(received) < len(sent):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    received.update((record.key, record.value) for record in records)
        await consumer.commit()
        committed = [await consumer.committed(TopicPartition(topic, p)) for p in range(3)]
    finally:
        await consumer.stop()

    assert received == sent
    # The group coordinator works: the commit covers every record exactly once.
    assert sum(offset or 0 for offset in committed) == RECORDS


@pytest.mark.kafka
@pytest.mark.slow
async def test_three_nodes_keep_accepting_acks_all_writes_after_a_broker_is_killed(
    kafka_cluster_factory: Any,
) -> None:
    cluster = await asyncio.to_thread(kafka_cluster_factory, 3)
    bootstrap = cluster.bootstrap_servers
    topic = unique_topic("infra-fault")
    await create_topic(
        bootstrap, topic, partitions=3, replication=3, **{"min.insync.replicas": "2"}
    )

    producer = idempotent_producer(bootstrap, request_timeout_ms=15_000, retry_backoff_ms=100)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"before", partition=0)
        # Kill the leader of partition 0: the hardest case, a leader election is needed.
        leader = producer.client.cluster.leader_for_partition(TopicPartition(topic, 0))
        victim = next(i for i in range(cluster.node_count) if cluster.node_id(i) == leader)
        cluster.kill_node(victim)
        assert not cluster.is_running(victim)

        async with asyncio.timeout(45):
            pending = [
                await producer.send(topic, f"after-{p}".encode(), partition=p) for p in range(3)
            ]
            acked = await asyncio.gather(*pending)
    finally:
        await producer.stop()

    assert [meta.partition for meta in acked] == [0, 1, 2]
    # Nothing acknowledged before the crash was lost in the failover.
    assert await read_partition(bootstrap, topic, 0, 2) == [b"before", b"after-0"]


SCHEMA_V1 = {
    "type": "record",
    "name": "Trade",
    "namespace": "test.infra",
    "fields": [{"name": "price", "type": "string"}],
}
# Reads v1 data: the new field has a default. BACKWARD compatible.
SCHEMA_V2_COMPATIBLE = {
    **SCHEMA_V1,
    "fields": [*SCHEMA_V1["fields"], {"name": "qty", "type": "string", "default": "0"}],
}
# Cannot read v1 data: the new field has no default. Not BACKWARD compatible.
SCHEMA_V2_INCOMPATIBLE = {
    **SCHEMA_V1,
    "fields": [*SCHEMA_V1["fields"], {"name": "qty", "type": "string"}],
}
REGISTRY_JSON = "application/vnd.schemaregistry.v1+json"


async def registry_call(
    http: aiohttp.ClientSession, method: str, url: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body)
    async with http.request(method, url, data=data) as response:
        return response.status, await response.json(content_type=None)


@pytest.mark.registry
async def test_registry_registers_a_schema_and_enforces_backward_compatibility(
    schema_registry_url: str,
) -> None:
    subject = "t-value"
    url = schema_registry_url
    async with aiohttp.ClientSession(headers={"Content-Type": REGISTRY_JSON}) as http:
        # A registry shared with other runs may already hold the subject: start from scratch.
        await registry_call(http, "DELETE", f"{url}/subjects/{subject}")
        await registry_call(http, "DELETE", f"{url}/subjects/{subject}?permanent=true")

        status, body = await registry_call(
            http, "POST", f"{url}/subjects/{subject}/versions", {"schema": json.dumps(SCHEMA_V1)}
        )
        assert status == 200, body
        schema_id = body["id"]
        assert isinstance(schema_id, int)

        status, body = await registry_call(http, "GET", f"{url}/schemas/ids/{schema_id}")
        assert status == 200, body
        assert json.loads(body["schema"]) == SCHEMA_V1

        status, body = await registry_call(
            http, "PUT", f"{url}/config/{subject}", {"compatibility": "BACKWARD"}
        )
        assert status == 200, body

        async def compatible(schema: dict[str, Any]) -> bool:
            status, body = await registry_call(
                http,
                "POST",
                f"{url}/compatibility/subjects/{subject}/versions/latest",
                {"schema": json.dumps(schema)},
            )
            assert status == 200, body
            return bool(body["is_compatible"])

        assert await compatible(SCHEMA_V2_COMPATIBLE) is True
        assert await compatible(SCHEMA_V2_INCOMPATIBLE) is False

        # Registering the same schema again is idempotent: same id.
        status, body = await registry_call(
            http, "POST", f"{url}/subjects/{subject}/versions", {"schema": json.dumps(SCHEMA_V1)}
        )
        assert (status, body["id"]) == (200, schema_id)
