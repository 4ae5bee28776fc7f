"""Account streams recover on their own: listen keys renewed across hours of compressed time,
an expired or vanished key replaced, a terminated spot subscription renewed, and a snapshot
published after each recovery."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from gateway.metrics import Metrics
from gateway.simulator.markets import Market
from tests.integration.accounts_support import (
    RecordingSink,
    account_settings,
    make_stream,
    running,
)
from tests.integration.conftest import SimulatorFactory

SECRET = "recovery-secret"
KEY = "recovery-key"


def renewals(metrics: Metrics, alias: str, market: str, action: str) -> float:
    return float(metrics.listen_key_renewals.labels(alias, market, action).get())


async def test_listen_key_is_renewed_before_expiry_across_hours_of_compressed_time(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    # One simulated hour lasts one second: the key lives 1 s without a keep-alive, the stream
    # keeps it alive every 0.3 s (Binance: 60 min and 18 min), and runs for four "hours".
    sim = await simulator_factory(
        market=Market.USDM,
        symbols=("BTCUSDT",),
        api_keys={KEY: SECRET},
        listen_key_validity_s=1.0,
    )
    account = account_settings(
        sim,
        tmp_path,
        alias="renewed",
        api_key=KEY,
        secret=SECRET,
        listen_key_validity_s=1.0,
        listen_key_keepalive_s=0.3,
    )
    sink = RecordingSink()
    stream, metrics = make_stream(account, sink)
    async with running(stream):
        await sink.wait_for(lambda kinds: "account_snapshot" in kinds)
        for _hour in range(4):
            await asyncio.sleep(1.0)
            await sim.emit_user_deposit("USDT", 10**8, api_key=KEY)
            health = stream.health()
            assert health["up"] is True and health["listen_key_state"] in ("active", "renewing")
            expires_in = health["listen_key_expires_in_s"]
            assert isinstance(expires_in, float) and 0 < expires_in <= 1.0
        await sink.wait_for(lambda kinds: kinds.count("account_update") == 4)
    assert "listen_key_expired" not in sink.kinds()
    assert sink.kinds().count("account_snapshot") == 1  # never reconnected
    assert stream.listen_key is not None and stream.listen_key.generation == 1
    assert renewals(metrics, "renewed", "usdm", "keepalive") >= 10
    age = stream.health()["listen_key_age_s"]
    assert isinstance(age, float) and age >= 4.0


async def test_an_expired_listen_key_is_replaced_and_the_account_reconciled(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    sim = await simulator_factory(
        market=Market.COINM, symbols=("BTCUSD_PERP",), api_keys={KEY: SECRET}
    )
    account = account_settings(sim, tmp_path, alias="expiring", api_key=KEY, secret=SECRET)
    sink = RecordingSink()
    stream, metrics = make_stream(account, sink)
    async with running(stream):
        await sink.wait_for(lambda kinds: "account_snapshot" in kinds)
        order_id = await sim.emit_user_order("BTCUSD_PERP", "BUY", api_key=KEY)
        await sink.wait_for(lambda kinds: "order_trade_update" in kinds)
        (old_key,) = sim.expire_listen_keys(KEY)  # listenKeyExpired, then the stream closes
        await sink.wait_for(lambda kinds: kinds.count("account_snapshot") == 2)
        await sim.emit_user_cancel(order_id, api_key=KEY)
        await sink.wait_for(lambda kinds: kinds.count("order_trade_update") == 2)
    assert sink.kinds() == [
        "account_snapshot",
        "order_trade_update",
        "listen_key_expired",
        "account_snapshot",
        "order_trade_update",
    ]
    first, second = sink.values("account_snapshot")
    assert (first["reason"], second["reason"]) == ("start", "listen_key")
    # The order placed before the outage is in the snapshot taken after it.
    assert [o["order_id"] for o in second["open_orders"]] == [order_id]
    assert sink.values("listen_key_expired")[0]["listen_key"] == old_key
    assert stream.listen_key is not None and stream.listen_key.generation == 2
    assert stream.listen_key.key != old_key
    assert renewals(metrics, "expiring", "coinm", "create") == 2


async def test_a_vanished_listen_key_minus_1125_is_recreated(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    sim = await simulator_factory(market=Market.USDM, symbols=("BTCUSDT",), api_keys={KEY: SECRET})
    account = account_settings(
        sim, tmp_path, alias="vanished", api_key=KEY, secret=SECRET, listen_key_keepalive_s=0.2
    )
    sink = RecordingSink()
    stream, _ = make_stream(account, sink)
    async with running(stream):
        await sink.wait_for(lambda kinds: "account_snapshot" in kinds)
        assert stream.listen_key is not None
        sim.listen_keys.close(stream.listen_key.key or "")  # no event: the next PUT gets -1125
        await sink.wait_for(lambda kinds: kinds.count("account_snapshot") == 2)
        await sim.emit_user_fill("BTCUSDT", "SELL", api_key=KEY)
        await sink.wait_for(lambda kinds: "trade_lite" in kinds)
    assert [v["reason"] for v in sink.values("account_snapshot")] == ["start", "listen_key"]
    assert stream.listen_key.generation == 2


async def test_a_terminated_spot_subscription_is_renewed_and_reconciled(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    sim = await simulator_factory(symbols=("BTCUSDT",), api_keys={KEY: SECRET})
    account = account_settings(sim, tmp_path, alias="terminated", api_key=KEY, secret=SECRET)
    sink = RecordingSink()
    stream, metrics = make_stream(account, sink)
    async with running(stream):
        await sink.wait_for(lambda kinds: "account_snapshot" in kinds)
        assert await sim.terminate_user_streams(KEY) == 1
        await sink.wait_for(lambda kinds: kinds.count("account_snapshot") == 2)
        await sim.emit_user_fill("BTCUSDT", "BUY", api_key=KEY)
        await sink.wait_for(lambda kinds: "account_position" in kinds)
        assert stream.health()["up"] is True
    assert sink.kinds() == [
        "account_snapshot",
        "event_stream_terminated",
        "account_snapshot",
        "execution_report",
        "execution_report",
        "account_position",
    ]
    assert [v["reason"] for v in sink.values("account_snapshot")] == ["start", "resubscribe"]
    assert metrics.account_reconciliations.labels("terminated", "spot").get() == 2


async def test_a_dropped_connection_reconnects_and_reconciles(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    sim = await simulator_factory(symbols=("BTCUSDT",), api_keys={KEY: SECRET})
    account = account_settings(sim, tmp_path, alias="dropped", api_key=KEY, secret=SECRET)
    sink = RecordingSink()
    stream, _ = make_stream(account, sink)
    async with running(stream):
        await sink.wait_for(lambda kinds: "account_snapshot" in kinds)
        assert await sim.drop_user_streams() == 1
        await sink.wait_for(lambda kinds: kinds.count("account_snapshot") == 2)
    assert [v["reason"] for v in sink.values("account_snapshot")] == ["start", "reconnect"]
    assert stream.health()["reconnects"] == 1


async def test_rotation_before_the_24_hour_cut_resubscribes_both_kinds(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    spot = await simulator_factory(symbols=("BTCUSDT",), api_keys={KEY: SECRET})
    usdm = await simulator_factory(market=Market.USDM, symbols=("BTCUSDT",), api_keys={KEY: SECRET})
    sinks = [RecordingSink(), RecordingSink()]
    streams = [
        make_stream(
            account_settings(sim, tmp_path, alias=f"rot-{sim.market.value}", api_key=KEY,
                             secret=SECRET),
            sink,
            rotate_after_s=0.4,  # Binance: 23 h of a 24 h connection
        )[0]
        for sim, sink in zip((spot, usdm), sinks, strict=True)
    ]  # fmt: skip
    async with running(streams[0]), running(streams[1]):
        for sink in sinks:
            await sink.wait_for(lambda kinds: kinds.count("account_snapshot") >= 2)
        # Events keep flowing between rotations. (One pushed in the instant between two
        # connections is not replayed by Binance: the next snapshot carries its effect, so the
        # test pushes until one is seen rather than racing the 0.4 s rotations.)
        for sim, sink, kind in (
            (spot, sinks[0], "account_position"),
            (usdm, sinks[1], "account_update"),
        ):
            for _ in range(20):
                await sim.emit_user_fill("BTCUSDT", "BUY", api_key=KEY)

                def seen(kinds: list[str], kind: str = kind) -> bool:
                    return kind in kinds

                with contextlib.suppress(TimeoutError):
                    await sink.wait_for(seen, timeout_s=0.3)
                    break
            assert kind in sink.kinds()
    for sink in sinks:
        reasons = [v["reason"] for v in sink.values("account_snapshot")]
        assert reasons[0] == "start" and set(reasons[1:]) == {"rotation"}
