"""The command line as a user meets it: one clear line and an exit code for what they can fix."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.integration.conftest import SimulatorFactory

GATEWAY = [sys.executable, "-m", "gateway"]
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "read_trades.py"


async def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 60
) -> tuple[int, str, float]:
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *GATEWAY, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    assert process.returncode is not None
    return process.returncode, stderr.decode(), time.monotonic() - started


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]  # (host, port) for AF_INET
        return port


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("config", "names"),
    [
        ("kafka:\n  linger_ms: -1\n", "kafka.linger_ms"),
        ("kafka:\n  bootstrap: x\n", "kafka.bootstrap"),
        ("binance:\n  markets:\n    spot:\n      symbols: ['BTC USDT']\n", "symbols"),
        ("binance:\n  markets:\n    mars: {}\n", "mars"),
        ("kafka: [unclosed\n", "invalid configuration"),
    ],
)
async def test_bad_config_is_one_line_and_exit_code_2(
    tmp_path: Path, config: str, names: str
) -> None:
    code, stderr, _ = await run_cli("run", "--config", write_config(tmp_path, config))
    assert code == 2
    assert names in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


async def test_missing_config_file_is_exit_code_2(tmp_path: Path) -> None:
    code, stderr, _ = await run_cli("run", "--config", str(tmp_path / "nope.yaml"))
    assert (code, len(stderr.strip().splitlines())) == (2, 1)
    assert "not found" in stderr


async def test_no_route_to_binance_fails_fast_and_points_at_the_demo(tmp_path: Path) -> None:
    rest = f"http://127.0.0.1:{closed_port()}"
    config = f"binance:\n  markets:\n    spot:\n      rest_url: {rest}\n"
    code, stderr, elapsed = await run_cli("run", "--config", write_config(tmp_path, config))
    assert code == 1
    assert "cannot reach Binance spot" in stderr
    assert "make demo" in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert elapsed < 30


async def test_unreachable_kafka_is_a_clear_error_not_a_traceback(
    tmp_path: Path, simulator_factory: SimulatorFactory
) -> None:
    sim = await simulator_factory(symbols=("BTCUSDT",))
    config = (
        f"binance:\n  markets:\n    spot:\n      symbols: [BTCUSDT]\n"
        f"      rest_url: {sim.rest_url}\n      stream_url: {sim.ws_url}\n"
        f"kafka:\n  bootstrap_servers: 127.0.0.1:{closed_port()}\n"
        f"log:\n  json: false\n"
    )
    code, stderr, _ = await run_cli("run", "--config", write_config(tmp_path, config))
    assert code == 1
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Kafka at 127.0.0.1:" in last, stderr
    assert "Traceback" not in stderr


async def _write_vector_trade(kafka_bootstrap: str, registry_url: str, topic_prefix: str) -> str:
    """Publish the spot trade vector through the real record path; returns its topic."""
    from gateway.adapters.kafka import KafkaSink, ensure_topics
    from gateway.adapters.registry import SchemaRegistryClient, register_catalog
    from gateway.binance.markets import Market
    from gateway.binance.messages import FrameParser, Trade
    from gateway.records.avro import ConfluentFraming, SchemaCatalog
    from gateway.records.builder import RecordBuilder
    from gateway.records.topics import TopicNamer
    from gateway.settings import KafkaSettings
    from tests.vectors import vector_bytes

    catalog, namer = SchemaCatalog.load(), TopicNamer(topic_prefix)
    async with SchemaRegistryClient(registry_url) as client:
        framing = ConfluentFraming(await register_catalog(client, catalog, namer))
    builder = RecordBuilder(catalog, framing, namer, "tail-test")
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix)
    topic = namer.topic("spot", "trade")
    await ensure_topics(settings, [topic])
    sink = KafkaSink(settings)
    await sink.start()
    [event] = FrameParser(Market.SPOT).parse(vector_bytes("spot/trade.json"), 1)
    assert isinstance(event, Trade)
    await sink.send(builder.build(event))
    await sink.stop()
    return topic


@pytest.mark.kafka
@pytest.mark.registry
async def test_tail_prints_decoded_records_with_exact_decimals(
    kafka_bootstrap: str, schema_registry_url: str, topic_prefix: str
) -> None:
    topic = await _write_vector_trade(kafka_bootstrap, schema_registry_url, topic_prefix)

    process = await asyncio.create_subprocess_exec(
        *GATEWAY, "tail", topic, "--bootstrap", kafka_bootstrap,
        "--registry", schema_registry_url, "--limit", "1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    [line] = stdout.decode().splitlines()
    printed = orjson.loads(line)
    assert printed["key"] == "BNBBTC"
    assert printed["value"]["price"] == "0.001"
    assert printed["value"]["quantity"] == "100"
    assert printed["value"]["trade_id"] == 12345
    assert printed["value"]["event_time_us"] == "2022-12-31T19:43:02.136000+00:00"
    assert printed["headers"]["event_kind"] == "trade"


@pytest.mark.kafka
async def test_tail_of_a_missing_topic_exits_at_once_with_one_line(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    missing = f"{topic_prefix}.spot.trad"
    process = await asyncio.create_subprocess_exec(
        *GATEWAY, "tail", missing, "--bootstrap", kafka_bootstrap,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        raise AssertionError("gateway tail of a missing topic did not exit") from None
    assert process.returncode == 3
    assert stdout == b""
    assert stderr.decode().splitlines() == [
        f"error: no topic {missing} in Kafka at {kafka_bootstrap}"
    ]


@pytest.mark.kafka
@pytest.mark.registry
async def test_documented_python_example_reads_trades(
    kafka_bootstrap: str, schema_registry_url: str, topic_prefix: str
) -> None:
    await _write_vector_trade(kafka_bootstrap, schema_registry_url, topic_prefix)
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), "--bootstrap", kafka_bootstrap, "--registry", schema_registry_url,
        "--topic", f"{topic_prefix}.spot.trade", "--symbol", "BNBBTC", "--limit", "1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    assert stdout.decode().strip().endswith("BNBBTC #12345 100 @ 0.001")
