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

from gateway.adapters.kafka import ensure_topics
from gateway.adapters.kafka_security import KafkaSecuritySettings
from gateway.errors import KafkaDeliveryError
from gateway.infra.kafka import KafkaCluster
from gateway.settings import KafkaSettings
from tests.integration.kafka_login_support import (
    REFUSAL_WITHIN_S,
    assert_refused,
    produce_trade,
    round_trip,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

USER, PASSWORD = "gateway", "gw-s3cret"


@pytest.fixture
async def sasl_cluster(kafka_cluster_factory: Callable[..., KafkaCluster]) -> KafkaCluster:
    return await asyncio.to_thread(
        kafka_cluster_factory, 1, sasl_users={USER: PASSWORD, "admin": "admin-secret"}
    )


def sasl(password: str = PASSWORD) -> KafkaSecuritySettings:
    return KafkaSecuritySettings(protocol="SASL_PLAINTEXT", username=USER, password=password)


async def test_records_round_trip_with_the_right_credentials(
    sasl_cluster: KafkaCluster, topic_prefix: str
) -> None:
    consumed = await round_trip(sasl_cluster.sasl_bootstrap_servers, sasl(), topic_prefix)
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
    record = await produce_trade(settings)
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
    error = await assert_refused(sasl_cluster.sasl_bootstrap_servers, security, topic_prefix)
    settings = KafkaSettings(
        bootstrap_servers=sasl_cluster.sasl_bootstrap_servers,
        topic_prefix=topic_prefix,
        request_timeout_ms=10_000,
        security=security,
    )
    with pytest.raises(KafkaDeliveryError, match="creating topics"):
        await asyncio.wait_for(ensure_topics(settings, [f"{topic_prefix}.x"]), REFUSAL_WITHIN_S)

    message = str(error)
    assert sasl_cluster.sasl_bootstrap_servers in message
    assert "not-the-password" not in message
