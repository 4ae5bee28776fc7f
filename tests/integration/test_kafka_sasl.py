"""kafka.security against a real broker that requires SASL (PLAIN over SASL_PLAINTEXT).

The right credentials: the gateway's admin client creates the topic, its sink produces a real
record and its reader reads it back. A wrong password: a clear error within seconds, no retry
loop and no hang; the same for a client that forgets SASL altogether.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from gateway.adapters.kafka import KafkaSink, ensure_topics
from gateway.adapters.kafka_security import KafkaSecuritySettings
from gateway.binance.markets import Market
from gateway.binance.messages import FrameParser, Trade
from gateway.consumers.reader import RecordReader, read_all
from gateway.errors import KafkaDeliveryError
from gateway.infra.kafka import KafkaCluster
from gateway.records.avro import SchemaCatalog, SingleObjectFraming
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, TopicNamer
from gateway.settings import KafkaSettings

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

USER, PASSWORD = "gateway", "gw-s3cret"
# Plenty for a refused login on loopback; far less than the hang a retry loop would be.
REFUSAL_WITHIN_S = 30.0


@pytest.fixture
async def sasl_cluster(kafka_cluster_factory: Callable[..., KafkaCluster]) -> KafkaCluster:
    return await asyncio.to_thread(
        kafka_cluster_factory, 1, sasl_users={USER: PASSWORD, "admin": "admin-secret"}
    )


def sasl(password: str = PASSWORD) -> KafkaSecuritySettings:
    return KafkaSecuritySettings(protocol="SASL_PLAINTEXT", username=USER, password=password)


def trade_record(topic_prefix: str) -> ProducerRecord:
    frame = {
        "e": "trade",
        "E": 1_700_000_000_123,
        "s": "BTCUSDT",
        "t": 4_242,
        "p": "37000.01000000",
        "q": "0.00100000",
        "T": 1_700_000_000_120,
        "m": True,
        "M": True,
    }
    [event] = FrameParser(Market.SPOT).parse(
        orjson.dumps(frame), 1_700_000_000_200_000, stream="btcusdt@trade"
    )
    assert isinstance(event, Trade)
    builder = RecordBuilder(
        SchemaCatalog.load(), SingleObjectFraming(), TopicNamer(topic_prefix), "sasl-test"
    )
    return builder.build(event)


async def test_records_round_trip_with_the_right_credentials(
    sasl_cluster: KafkaCluster, topic_prefix: str
) -> None:
    settings = KafkaSettings(
        bootstrap_servers=sasl_cluster.sasl_bootstrap_servers,
        topic_prefix=topic_prefix,
        partitions=1,
        security=sasl(),
    )
    record = trade_record(topic_prefix)
    assert await ensure_topics(settings, [record.topic]) == [record.topic]

    sink = KafkaSink(settings)
    await sink.start()
    await sink.send(record)
    await sink.stop()
    assert (sink.stats.acked, sink.stats.failed) == (1, 0)

    [consumed] = await read_all(
        [record.topic],
        bootstrap_servers=settings.bootstrap_servers,
        expected=1,
        timeout_s=30,
        settle_s=0.5,
        security=settings.security,
    )
    assert consumed.key == "BTCUSDT"
    assert consumed.value["trade_id"] == 4_242


async def test_gateway_tail_reads_through_sasl_with_the_config_file(
    sasl_cluster: KafkaCluster, topic_prefix: str, tmp_path: Path
) -> None:
    settings = KafkaSettings(
        bootstrap_servers=sasl_cluster.sasl_bootstrap_servers,
        topic_prefix=topic_prefix,
        partitions=1,
        security=sasl(),
    )
    record = trade_record(topic_prefix)
    await ensure_topics(settings, [record.topic])
    sink = KafkaSink(settings)
    await sink.start()
    await sink.send(record)
    await sink.stop()
    password_file = tmp_path / "kafka-password"  # as a Kubernetes Secret is mounted
    password_file.write_text(PASSWORD + "\n")
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "kafka:\n"
        f"  bootstrap_servers: {settings.bootstrap_servers}\n"
        "  security: {protocol: SASL_PLAINTEXT, sasl_mechanism: PLAIN, "
        f"username: {USER}, password_file: {password_file}}}\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "tail", record.topic, "--config", str(config),
        "--limit", "1", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert orjson.loads(out)["value"]["trade_id"] == 4_242
    assert PASSWORD.encode() not in out + err


@pytest.mark.parametrize(
    "security",
    [sasl("not-the-password"), KafkaSecuritySettings()],
    ids=["wrong-password", "no-sasl"],
)
async def test_refused_credentials_fail_fast_and_clearly(
    sasl_cluster: KafkaCluster, topic_prefix: str, security: KafkaSecuritySettings
) -> None:
    settings = KafkaSettings(
        bootstrap_servers=sasl_cluster.sasl_bootstrap_servers,
        topic_prefix=topic_prefix,
        request_timeout_ms=10_000,
        security=security,
    )
    sink = KafkaSink(settings)
    with pytest.raises(KafkaDeliveryError, match="connecting the producer") as producer_error:
        await asyncio.wait_for(sink.start(), REFUSAL_WITHIN_S)
    await sink.stop()  # nothing was started; stopping is still safe

    with pytest.raises(KafkaDeliveryError, match="creating topics"):
        await asyncio.wait_for(ensure_topics(settings, [f"{topic_prefix}.x"]), REFUSAL_WITHIN_S)

    reader = RecordReader(
        [f"{topic_prefix}.x"], bootstrap_servers=settings.bootstrap_servers, security=security
    )
    with pytest.raises(KafkaDeliveryError, match="starting the consumer"):
        await asyncio.wait_for(reader.__aenter__(), REFUSAL_WITHIN_S)

    message = str(producer_error.value)
    assert sasl_cluster.sasl_bootstrap_servers in message
    assert "not-the-password" not in message
