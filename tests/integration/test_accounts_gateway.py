"""A whole gateway run with public streams and private accounts: accounts are shards of the
worker, their events reach their own topics, and no configured secret shows anywhere an operator
or a consumer can look (logs at DEBUG, /metrics, /readyz, Kafka headers, keys and values)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest

from gateway.binance.signing import KeyType
from gateway.consumers.reader import read_all
from gateway.logs import JsonFormatter
from gateway.settings import GatewaySettings
from tests.integration.accounts_support import (
    account_settings,
    eventually,
    health_count,
    pem_keys,
)
from tests.integration.conftest import RunningGateway, SimulatorFactory

pytestmark = pytest.mark.kafka


async def test_a_whole_run_with_accounts_leaks_no_secret(
    simulator_factory: SimulatorFactory,
    tmp_path: Path,
    kafka_bootstrap: str,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    spot_key, spot_secret = "GWspotKey0a9b8c7d6e", "GWspotSecret5f4e3d2c1b0a99"
    ed_key, (ed_private, ed_public) = "GWedKey77665544", pem_keys(KeyType.ED25519)
    fut_key, fut_secret = "GWfutKey11223344", "GWfutSecret8877665544332211"
    spot = await simulator_factory(
        symbols=("BTCUSDT",), trades_per_second_per_symbol=20,
        api_keys={spot_key: spot_secret, ed_key: ed_public},
    )  # fmt: skip
    usdm = await simulator_factory(
        market="usdm", symbols=("BTCUSDT",), api_keys={fut_key: fut_secret}
    )
    accounts = [
        account_settings(spot, tmp_path, alias="desk-a", api_key=spot_key, secret=spot_secret),
        account_settings(
            spot,
            tmp_path,
            alias="desk-ed",
            api_key=ed_key,
            secret=ed_private,
            key_type=KeyType.ED25519,
        ),
        account_settings(usdm, tmp_path, alias="desk-f", api_key=fut_key, secret=fut_secret),
    ]
    secrets = [spot_key, spot_secret, ed_key, fut_key, fut_secret]
    secrets += [line for line in ed_private.splitlines() if "PRIVATE KEY" not in line]
    settings = GatewaySettings(
        gateway_id="accounts-run",
        binance={
            "markets": {
                "spot": {"symbols": ["BTCUSDT"], "channels": ["trade"],
                         "stream_url": spot.ws_url, "rest_url": spot.rest_url, "shards": 2},
                "usdm": {"symbols": ["BTCUSDT"], "channels": ["aggTrade"],
                         "stream_url": usdm.ws_url, "rest_url": usdm.rest_url, "shards": 2},
            }
        },
        accounts=accounts,
        kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": topic_prefix},
        status={"port": 0, "host": "127.0.0.1"},
    )  # fmt: skip
    running = RunningGateway(settings)
    gateway = running.gateway
    await running.wait_connected()
    account_units = ["account-spot-desk-a", "account-spot-desk-ed", "account-usdm-desk-f"]
    assert set(account_units) <= set(gateway.layout())

    def account_health() -> list[dict[str, object]]:
        units = gateway.ownership.units if gateway.ownership else {}
        return [units[name].health() for name in account_units if name in units]

    await eventually(
        lambda: len(account_health()) == 3 and all(h["up"] for h in account_health()), 20
    )
    await spot.emit_user_fill("BTCUSDT", "BUY", api_key=spot_key)
    await spot.emit_user_fill("BTCUSDT", "SELL", api_key=ed_key)
    await usdm.emit_user_fill("BTCUSDT", "BUY", api_key=fut_key)
    await eventually(lambda: all(health_count(h, "events") >= 2 for h in account_health()), 20)
    await eventually(lambda: gateway.readiness()[0], 30)
    base = running.status_url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/metrics") as response:
            metrics_text = await response.text()
        async with http.get(f"{base}/readyz") as response:
            ready_text = await response.text()
            assert response.status == 200, ready_text  # every account up: ready
    await running.stop()

    assert 'gateway_account_stream_up{account="desk-f",market="usdm"} 1.0' in metrics_text
    topics = gateway.all_topics()
    assert f"{topic_prefix}.spot.account.desk-a" in topics
    acked = gateway.sink.stats.acked
    records = await read_all(topics, bootstrap_servers=kafka_bootstrap, expected=acked)
    assert len(records) == acked
    account_records = [r for r in records if ".account." in r.topic]
    assert {r.topic.rsplit(".", 1)[-1] for r in account_records} == {"desk-a", "desk-ed", "desk-f"}

    exchange_side = ("gateway.simulator", "websockets.server", "aiohttp.server", "aiohttp.web")
    formatter = JsonFormatter()
    logs = "\n".join(
        f"{r.getMessage()} {r.args!r} {formatter.format(r)}"
        for r in caplog.records
        if not r.name.startswith(exchange_side)
    )
    assert sum(r.levelno == logging.DEBUG for r in caplog.records) > 20
    places = {
        "logs": logs,
        "metrics": metrics_text,
        "readyz": ready_text,
        "kafka headers": repr([r.headers for r in records]),
        "kafka keys and values": repr([(r.key, r.value) for r in records]),
    }
    for place, text in places.items():
        for secret in secrets:
            assert secret not in text, f"a configured secret appears in the {place}"
    await asyncio.sleep(0)
