"""Account streams against the simulator: spot over the WebSocket API, futures over listen keys."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from gateway.accounts.settings import AccountSettings
from gateway.binance.signing import KeyType
from gateway.consumers.reader import ConsumedRecord, read_all
from gateway.logs import JsonFormatter
from gateway.metrics import Metrics
from gateway.settings import GatewaySettings
from gateway.simulator.markets import Market
from tests.integration.accounts_support import (
    RecordingSink,
    account_settings,
    eventually,
    health_total,
    make_stream,
    pem_keys,
    running,
    streaming_to_kafka,
)
from tests.integration.conftest import SimulatorFactory

SECRET = "desk-a-hmac-secret-0123456789"


async def test_spot_account_fills_cancels_and_balances_arrive_in_order(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    sim = await simulator_factory(symbols=("BTCUSDT",), api_keys={"desk-a-key": SECRET})
    account = account_settings(sim, tmp_path, alias="desk-a", api_key="desk-a-key", secret=SECRET)
    sink = RecordingSink()
    stream, _ = make_stream(account, sink)
    async with running(stream):
        await sink.wait_for(lambda kinds: "account_snapshot" in kinds)
        assert stream.health()["up"] is True
        order_id = await sim.emit_user_order("BTCUSDT", "BUY", api_key="desk-a-key")
        await sim.emit_user_cancel(order_id, api_key="desk-a-key")
        await sim.emit_user_fill("BTCUSDT", "SELL", api_key="desk-a-key")
        await sim.emit_user_deposit("ETH", 5 * 10**8, api_key="desk-a-key")
        await sink.wait_for(lambda kinds: len(kinds) >= 8)
    assert sink.kinds() == [
        "account_snapshot",
        "execution_report",  # NEW (resting)
        "execution_report",  # CANCELED
        "execution_report",  # NEW
        "execution_report",  # TRADE
        "account_position",
        "balance_update",
        "account_position",
    ]
    reports = sink.values("execution_report")
    assert [r["execution_type"] for r in reports] == ["NEW", "CANCELED", "NEW", "TRADE"]
    assert reports[0]["order_id"] == reports[1]["order_id"] == order_id
    assert {r.topic for r in sink.records} == {"binance.spot.account.desk-a"}
    (snapshot,) = sink.values("account_snapshot")
    assert snapshot["reason"] == "start" and snapshot["account"] == "desk-a"


async def test_futures_account_fills_and_balances_arrive_in_order(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    sim = await simulator_factory(
        market=Market.USDM, symbols=("BTCUSDT",), api_keys={"desk-b-key": SECRET}
    )
    account = account_settings(sim, tmp_path, alias="desk-b", api_key="desk-b-key", secret=SECRET)
    sink = RecordingSink()
    stream, _ = make_stream(account, sink)
    async with running(stream):
        await sink.wait_for(lambda kinds: "account_snapshot" in kinds)
        order_id = await sim.emit_user_order("BTCUSDT", "BUY", api_key="desk-b-key")
        await sim.emit_user_cancel(order_id, api_key="desk-b-key")
        await sim.emit_user_fill("BTCUSDT", "BUY", api_key="desk-b-key")
        await sim.emit_user_deposit("USDT", 10**8, api_key="desk-b-key")
        await sink.wait_for(lambda kinds: len(kinds) >= 8)
    assert sink.kinds() == [
        "account_snapshot",
        "order_trade_update",
        "order_trade_update",
        "order_trade_update",
        "trade_lite",
        "order_trade_update",
        "account_update",
        "account_update",
    ]
    assert {r.topic for r in sink.records} == {"binance.usdm.account.desk-b"}


@pytest.mark.parametrize("key_type", [KeyType.RSA, KeyType.ED25519])
async def test_rsa_and_ed25519_keys_subscribe_and_reconcile(
    simulator_factory: SimulatorFactory, tmp_path: Path, key_type: KeyType
) -> None:
    private_pem, public_pem = pem_keys(key_type)
    sim = await simulator_factory(symbols=("BTCUSDT",), api_keys={"asym-key": public_pem})
    account = account_settings(
        sim, tmp_path, alias="asym", api_key="asym-key", secret=private_pem, key_type=key_type
    )
    sink = RecordingSink()
    stream, _ = make_stream(account, sink)
    async with running(stream):
        # The snapshot needs two signed REST reads; the subscription a signed WS API request.
        await sink.wait_for(lambda kinds: "account_snapshot" in kinds)
        await sim.emit_user_fill("BTCUSDT", "BUY", api_key="asym-key")
        await sink.wait_for(lambda kinds: "account_position" in kinds)
    assert stream.health()["state"] == "down"  # stopped
    assert sink.kinds()[:2] == ["account_snapshot", "execution_report"]


@pytest.mark.parametrize("market", [Market.SPOT, Market.USDM])
async def test_a_wrong_key_is_rejected_clearly_without_a_crash_loop(
    simulator_factory: SimulatorFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    market: Market,
) -> None:
    sim = await simulator_factory(market=market, symbols=("BTCUSDT",), api_keys={"good": SECRET})
    account = account_settings(sim, tmp_path, alias="bad", api_key="good", secret="wrong-secret")
    if market is Market.USDM:  # listen keys need only the API key: use an unknown one
        account = account_settings(sim, tmp_path, alias="bad", api_key="unknown", secret=SECRET)
    sink = RecordingSink()
    stream, metrics = make_stream(account, sink, auth_retry_s=60.0)
    async with running(stream) as task:
        for _ in range(200):
            if stream.health()["state"] == "rejected":
                break
            await asyncio.sleep(0.01)
        assert stream.health()["state"] == "rejected"
        assert stream.health()["up"] is False
        await asyncio.sleep(0.3)  # would be dozens of attempts in a tight loop
        assert not task.done()
    health = stream.health()
    assert health["state"] == "down" and health["reconnects"] == 0
    assert "-1022" in str(health["last_error"]) or "-2015" in str(health["last_error"])
    refusals = [r for r in caplog.records if "refused the account's credentials" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].levelname == "ERROR"
    assert sink.records == []
    up = metrics.account_stream_up.labels("bad", market.value)._value.get()
    assert up == 0


async def _kafka_records(bootstrap: str, topics: list[str], expected: int) -> list[ConsumedRecord]:
    return await read_all(topics, bootstrap_servers=bootstrap, expected=expected, timeout_s=30)


@pytest.mark.kafka
async def test_spot_and_futures_accounts_reach_their_single_partition_topics_in_order(
    simulator_factory: SimulatorFactory, tmp_path: Path, kafka_bootstrap: str, topic_prefix: str
) -> None:
    spot_sim = await simulator_factory(symbols=("BTCUSDT", "ETHUSDT"), api_keys={"k": SECRET})
    usdm_sim = await simulator_factory(
        market=Market.USDM, symbols=("BTCUSDT",), api_keys={"k": SECRET}
    )
    accounts = [
        account_settings(spot_sim, tmp_path, alias="team-a", api_key="k", secret=SECRET),
        account_settings(usdm_sim, tmp_path, alias="team-a", api_key="k", secret=SECRET),
    ]
    async with streaming_to_kafka(accounts, kafka_bootstrap, topic_prefix, snapshots=2) as run:
        topics, streams = run.topics, run.streams
        assert topics == [
            f"{topic_prefix}.spot.account.team-a",
            f"{topic_prefix}.usdm.account.team-a",
        ]
        assert sorted(run.created) == topics
        for _ in range(3):  # interleave symbols and kinds: one partition keeps them in order
            await spot_sim.emit_user_fill("BTCUSDT", "BUY", api_key="k")
            await spot_sim.emit_user_fill("ETHUSDT", "SELL", api_key="k")
            await usdm_sim.emit_user_fill("BTCUSDT", "BUY", api_key="k")
        await spot_sim.emit_user_deposit("BNB", 10**8, api_key="k")
        for sim in (spot_sim, usdm_sim):
            order_id = await sim.emit_user_order("BTCUSDT", "SELL", api_key="k")
            await sim.emit_user_cancel(order_id, api_key="k")
        await eventually(lambda: health_total(streams, "events") >= 3 * 3 * 2 + 3 * 4 + 2 + 4)
    records = await _kafka_records(kafka_bootstrap, topics, expected=2 + 18 + 12 + 2 + 4)
    spot = [r for r in records if r.topic == topics[0]]
    usdm = [r for r in records if r.topic == topics[1]]
    assert {r.partition for r in records} == {0}
    assert [r.offset for r in spot] == list(range(len(spot)))
    assert [r.headers["event_kind"] for r in spot] == [
        "account_snapshot",
        *["execution_report", "execution_report", "account_position"] * 6,
        "balance_update",
        "account_position",
        "execution_report",  # NEW, resting
        "execution_report",  # CANCELED
    ]
    assert [r.value["execution_type"] for r in spot[-2:]] == ["NEW", "CANCELED"]
    assert [r.key for r in spot[1:4]] == ["BTCUSDT", "BTCUSDT", "team-a"]
    assert [r.value["symbol"] for r in spot[1:-2] if r.headers["event_kind"] == "execution_report"] == [
        "BTCUSDT", "BTCUSDT", "ETHUSDT", "ETHUSDT"
    ] * 3  # fmt: skip
    assert [r.headers["event_kind"] for r in usdm] == [
        "account_snapshot",
        *["order_trade_update", "trade_lite", "order_trade_update", "account_update"] * 3,
        "order_trade_update",
        "order_trade_update",
    ]
    assert [r.value["order_status"] for r in usdm[-2:]] == ["NEW", "CANCELED"]
    assert usdm[0].value["reason"] == "start" and usdm[0].key == "team-a"


@pytest.mark.kafka
async def test_no_secret_in_logs_metrics_headers_records_or_settings_output(
    simulator_factory: SimulatorFactory,
    tmp_path: Path,
    kafka_bootstrap: str,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    hmac_key, hmac_secret = "SPOTkey9f8e7d6c5b4a", "SPOTsecret0a1b2c3d4e5f6a7b8c9d"
    ed_key, (ed_private, ed_public) = "EDkey1122334455", pem_keys(KeyType.ED25519)
    fut_key, fut_secret = "FUTkey5566778899", "FUTsecret99887766554433"
    monkeypatch.setenv("DESK_A_API_KEY", hmac_key)
    monkeypatch.setenv("DESK_A_SECRET", hmac_secret)
    spot_sim = await simulator_factory(
        symbols=("BTCUSDT",), api_keys={hmac_key: hmac_secret, ed_key: ed_public}
    )
    usdm_sim = await simulator_factory(
        market=Market.USDM, symbols=("BTCUSDT",), api_keys={fut_key: fut_secret}
    )
    env_account = AccountSettings(
        alias="desk-a",
        market="spot",
        api_key_env="DESK_A_API_KEY",
        secret_env="DESK_A_SECRET",
        ws_api_url=f"{spot_sim.ws_url}/ws-api/v3",
        rest_url=spot_sim.rest_url,
    )
    accounts = [
        env_account,
        account_settings(
            spot_sim,
            tmp_path,
            alias="desk-ed",
            api_key=ed_key,
            secret=ed_private,
            key_type=KeyType.ED25519,
        ),
        account_settings(
            usdm_sim,
            tmp_path,
            alias="desk-f",
            api_key=fut_key,
            secret=fut_secret,
            listen_key_keepalive_s=0.2,
        ),
        # A wrong secret: its refusal is logged, and must not quote what was sent.
        account_settings(spot_sim, tmp_path, alias="desk-x", api_key=hmac_key, secret="x" * 30),
    ]
    secrets = [hmac_key, hmac_secret, ed_key, fut_key, fut_secret, "x" * 30, ed_private]
    secrets += [line for line in ed_private.splitlines() if "PRIVATE KEY" not in line]
    assert {secret for a in accounts for secret in a.secrets()} <= set(secrets)

    metrics = Metrics()
    async with streaming_to_kafka(
        accounts, kafka_bootstrap, topic_prefix, snapshots=3, metrics=metrics, auth_retry_s=60.0
    ) as run:
        topics, streams = run.topics, run.streams
        await spot_sim.emit_user_fill("BTCUSDT", "BUY", api_key=hmac_key)
        await spot_sim.emit_user_fill("BTCUSDT", "SELL", api_key=ed_key)
        await usdm_sim.emit_user_fill("BTCUSDT", "BUY", api_key=fut_key)
        await asyncio.sleep(0.6)  # a few keep-alives
        await eventually(lambda: health_total(streams, "events") >= 3 + 3 + 4)
        healths = [s.health() for s in streams]
    assert [h["state"] for h in healths] == ["up", "up", "up", "rejected"]
    records = await _kafka_records(kafka_bootstrap, topics, expected=3 + 10)
    assert len(records) == 13

    settings = GatewaySettings(accounts=accounts)
    formatter = JsonFormatter()
    # The exchange's side of the sockets (the simulator and its websockets server, which logs
    # every frame it receives at DEBUG) runs in this process but is not the gateway: Binance's
    # logs are not ours to grep. Every other record is the gateway's or its libraries'.
    exchange_side = ("gateway.simulator", "websockets.server", "aiohttp.server", "aiohttp.web")
    gateway_records = [r for r in caplog.records if not r.name.startswith(exchange_side)]
    places = {
        "log records": "\n".join(
            f"{r.getMessage()} {r.args!r} {formatter.format(r)}" for r in gateway_records
        ),
        "metrics": generate_latest(metrics.registry).decode(),
        "kafka headers": repr([r.headers for r in records]),
        "kafka keys and values": repr([(r.key, r.value) for r in records]),
        "health": repr(healths),
        "settings": f"{settings!r} {settings} {settings.model_dump_json()}",
    }
    debug = [r for r in gateway_records if r.levelno == logging.DEBUG]
    assert len(debug) > 20 and any(r.name.startswith("gateway.") for r in debug)
    for place, text in places.items():
        for secret in secrets:
            assert secret not in text, f"a configured secret appears in the {place}"
    # The credentials were used, all the same: they are readable where they are needed.
    assert env_account.api_key.get_secret_value() == hmac_key


async def test_gateway_plan_loads_accounts_without_printing_their_secrets(tmp_path: Path) -> None:
    secret_file = tmp_path / "desk-b.secret"
    secret_file.write_text("PLANsecretFromFile123\n")
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "accounts:\n"
        "  - {alias: desk-a, market: spot, api_key_env: PLAN_KEY, secret_env: PLAN_SECRET}\n"
        f"  - {{alias: desk-b, market: usdm, api_key_env: PLAN_KEY, secret_file: {secret_file}}}\n"
    )
    env = {**os.environ, "PLAN_KEY": "PLANkeyFromEnv456", "PLAN_SECRET": "PLANsecretFromEnv789"}
    gateway = Path(sys.executable).parent / "gateway"
    process = await asyncio.create_subprocess_exec(
        str(gateway), "plan", "--offline", "--json", "--config", str(config),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    plan = json.loads(out)
    assert [a["id"] for a in plan["accounts"]] == ["account-spot-desk-a", "account-usdm-desk-b"]
    for secret in ("PLANkeyFromEnv456", "PLANsecretFromEnv789", "PLANsecretFromFile123"):
        assert secret.encode() not in out + err
    # A missing variable stops the start-up, naming the field and the variable only.
    del env["PLAN_SECRET"]
    process = await asyncio.create_subprocess_exec(
        str(gateway), "plan", "--offline", "--config", str(config),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert b"secret_env: environment variable PLAN_SECRET is not set" in err
    assert b"PLANkeyFromEnv456" not in out + err
