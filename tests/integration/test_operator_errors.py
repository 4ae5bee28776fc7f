"""Operator errors are one line (issue 13): a port in use, a registry or Kafka unreachable, a
configured symbol that Binance does not list. Before: a 92-line traceback for the port, and
silence for the symbol (only ``gateway plan`` warned)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from gateway.simulator.exchange import ExchangeSimulator
from tests.integration.conftest import RunningGateway, SimulatorFactory, gateway_settings
from tests.integration.test_cli import closed_port, run_cli, write_config

pytestmark = pytest.mark.kafka


def config(sim: ExchangeSimulator, kafka: str, extra: str = "") -> str:
    return (
        f"binance:\n  markets:\n    spot:\n      symbols: [BTCUSDT]\n"
        f"      rest_url: {sim.rest_url}\n      stream_url: {sim.ws_url}\n"
        f"kafka:\n  bootstrap_servers: {kafka}\n  topic_prefix: operator-errors\n"
        f"coordination:\n  enabled: false\n"
        f"log:\n  json: false\n{extra}"
    )


def assert_one_line(stderr: str, *needles: str) -> None:
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    for needle in needles:
        assert needle in last, stderr


async def test_a_status_port_in_use_is_one_line_and_exit_code_2(
    tmp_path: Path, simulator_factory: SimulatorFactory, kafka_bootstrap: str
) -> None:
    sim = await simulator_factory(symbols=("BTCUSDT",))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        text = config(sim, kafka_bootstrap, f"status:\n  host: 127.0.0.1\n  port: {port}\n")
        code, stderr, _ = await run_cli("run", "--config", write_config(tmp_path, text))
    assert code == 2
    assert_one_line(stderr, "configuration error:", f"status.port {port}", "cannot be bound")


async def test_an_unreachable_registry_is_one_line_and_exit_code_1(
    tmp_path: Path, simulator_factory: SimulatorFactory, kafka_bootstrap: str
) -> None:
    sim = await simulator_factory(symbols=("BTCUSDT",))
    registry = f"http://127.0.0.1:{closed_port()}"
    text = config(sim, kafka_bootstrap, f"registry:\n  url: {registry}\n")
    code, stderr, _ = await run_cli("run", "--config", write_config(tmp_path, text))
    assert code == 1
    assert_one_line(stderr, "error:", "registry", "unreachable")


async def test_a_configured_symbol_binance_does_not_list_is_loud_and_in_readyz(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = await simulator_factory(symbols=("BTCUSDT",))
    settings = gateway_settings(
        sim, symbols=("BTCUSDT", "NOPEUSDT"), kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix, registry_url=None,
    )  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="gateway.runtime.observer"):
        running = RunningGateway(settings)
        try:
            await running.wait_connected()
            ready, details = running.gateway.readiness()
        finally:
            await running.stop()
    assert details["not_streamed"] == ["spot NOPEUSDT"]
    assert ready  # BTCUSDT streams: a typo must not take the healthy symbols down
    loud = [r.getMessage() for r in caplog.records if "NOPEUSDT" in r.getMessage()]
    assert len(loud) == 1 and "not streamed" in loud[0]
