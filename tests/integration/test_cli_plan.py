"""``gateway plan`` against simulated exchanges: it follows exchangeInfo and flags what won't fit."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson
import yaml

from gateway.simulator import Market
from tests.integration.conftest import SimulatorFactory
from tests.integration.test_cli import closed_port

GATEWAY = [sys.executable, "-m", "gateway", "plan"]
SIM = {"start_paused": True, "ping_interval_s": None}


async def plan_cli(config: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *GATEWAY, "--config", str(config), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def write(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def market(sim: Any, **settings: Any) -> dict[str, Any]:
    return {"stream_url": sim.ws_url, "rest_url": sim.rest_url, **settings}


def symbols_per_market(report: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for shard in report["shards"]:
        counts[shard["market"]] = counts.get(shard["market"], 0) + shard["symbols"]
    return counts


async def test_the_plan_follows_listings_and_delistings(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    spot = await simulator_factory(symbols=("BTCUSDT", "ETHUSDT", "BNBUSDT"), **SIM)
    usdm = await simulator_factory(market=Market.USDM, symbols=("BTCUSDT", "ETHUSDT"), **SIM)
    spot.delist_symbol("ETHUSDT")
    config = write(
        tmp_path,
        {
            "binance": {
                "markets": {
                    "spot": market(spot, symbols=["BTCUSDT", "ETHUSDT"], shards=4),
                    "usdm": market(
                        usdm, select={"quote_assets": ["USDT"]}, shards=4,
                        channels=["aggTrade", "depth@100ms"], market_wide=["!bookTicker"],
                    ),
                }
            },
            "registry": {"url": "https://planner:s3cr3t-token@registry.example"},
        },
    )  # fmt: skip
    code, stdout, stderr = await plan_cli(config, "--json")
    assert code == 0, stderr
    before = orjson.loads(stdout)
    assert [s["id"] for s in before["shards"]] == [
        *(f"spot-00{i}" for i in range(4)), *(f"usdm-00{i}" for i in range(4)), "usdm-wide",
    ]  # fmt: skip
    assert symbols_per_market(before) == {"spot": 1, "usdm": 2}  # ETHUSDT is delisted on spot
    assert before["oversized"] == []
    assert before["warnings"] == [
        "spot: ETHUSDT is configured but exchangeInfo does not list it as TRADING: not streamed"
    ]
    wide = before["shards"][-1]
    assert (wide["streams"], wide["connections"], wide["weight"]) == (1, 1, 500.0)
    assert "s3cr3t" not in stdout

    usdm.list_symbol("SOLUSDT")
    code, stdout, stderr = await plan_cli(config, "--json")
    after = orjson.loads(stdout)
    assert symbols_per_market(after) == {"spot": 1, "usdm": 3}
    changed = [a["id"] for a, b in zip(after["shards"], before["shards"], strict=True) if a != b]
    assert len(changed) == 1 and changed[0].startswith("usdm-")
    assert after["fingerprint"] == before["fingerprint"]


async def test_the_table_warns_about_shards_that_do_not_fit_one_connection(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    spot = await simulator_factory(symbols=("BTCUSDT", "ETHUSDT", "BNBUSDT"), **SIM)
    config = write(
        tmp_path,
        {"binance": {"markets": {"spot": market(
            spot, select={}, shards=1, max_streams_per_connection=4,
            channels=["trade", "aggTrade"],
        )}}},
    )  # fmt: skip
    code, stdout, stderr = await plan_cli(config)
    assert code == 0, stderr
    assert "spot-000" in stdout and "3 symbols, 6 streams" in stdout
    warnings = [line for line in stdout.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: shard spot-000 does not fit one connection (6 streams, 2 connections): "
        "raise binance.markets.spot.shards above 1 (e.g. 2)"
    ]


async def test_offline_plans_from_configuration_alone(tmp_path: Path) -> None:
    unreachable = f"http://127.0.0.1:{closed_port()}"
    config = write(
        tmp_path,
        {"binance": {"markets": {
            "spot": {"symbols": ["BTCUSDT"], "rest_url": unreachable},
            "coinm": {"select": {}, "rest_url": unreachable, "shards": 2},
        }}},
    )  # fmt: skip
    code, stdout, stderr = await plan_cli(config, "--offline", "--json")
    assert code == 0, stderr
    report = orjson.loads(stdout)
    assert symbols_per_market(report) == {"spot": 1, "coinm": 0}
    assert report["warnings"] == [
        "coinm: `select` needs exchangeInfo, which was not fetched (--offline): "
        "its shards are shown empty"
    ]
    # Online, the unreachable market is one line on stderr and exit code 1.
    code, stdout, stderr = await plan_cli(config)
    assert code == 1 and stdout == ""
    assert stderr.startswith("error: ") and "exchangeInfo unreachable" in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
