"""Every fault can be injected, from Python and over HTTP, and looks to a client as described."""

from __future__ import annotations

import asyncio
import itertools
import time

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gateway.simulator.markets import Market
from tests.integration.test_simulator_support import (
    Start,
    receive,
    receive_until,
    silent_for,
    simulator,
)

__all__ = ["simulator"]
ONE = {"symbols": ("BTCUSDT",)}


async def trade_ids(ws: ClientConnection, count: int) -> list[int]:
    return [frame["a"] for frame in await receive(ws, count)]


async def test_drop_aborts_without_a_close_frame(simulator: Start) -> None:
    sim = await simulator(**ONE)
    async with connect(f"{sim.ws_url}/ws/btcusdt@aggTrade") as ws:
        await sim.wait_for_subscribers(1)
        sim.inject("drop")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 2)
        assert closed.value.rcvd is None


async def test_stall_keeps_the_connection_open_and_silent(simulator: Start) -> None:
    sim = await simulator(**ONE)
    async with connect(f"{sim.ws_url}/ws/btcusdt@aggTrade") as ws:
        await sim.wait_for_subscribers(1)
        (connection,) = [c for c in sim.connections() if c.is_open]
        sim.inject("stall", connection_id=connection.connection_id)
        sim.run_for(trades_per_symbol=20)
        await sim.wait_idle(timeout_s=5)
        assert await silent_for(ws, 0.3)
        pong = await ws.ping()
        await asyncio.wait_for(pong, 1)  # still answering pings


async def test_stall_without_pings_stops_answering_them(simulator: Start) -> None:
    sim = await simulator(**ONE)
    async with connect(
        f"{sim.ws_url}/ws/btcusdt@aggTrade", ping_interval=None, close_timeout=0.2
    ) as ws:
        await sim.wait_for_subscribers(1)
        sim.inject("stall_no_pings")
        pong = await ws.ping()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pong, 0.5)


async def test_gap_skips_ids_on_the_stream_but_rest_has_them(simulator: Start) -> None:
    sim = await simulator(**ONE)
    async with connect(f"{sim.ws_url}/ws/btcusdt@aggTrade") as ws:
        await sim.wait_for_subscribers(1)
        sim.run_for(trades_per_symbol=1)
        await sim.wait_idle(timeout_s=5)
        (before,) = await trade_ids(ws, 1)
        sim.inject("gap", symbol="BTCUSDT", count=3)
        sim.run_for(trades_per_symbol=40)
        await sim.wait_idle(timeout_s=5)
        (after,) = await trade_ids(ws, 1)
    assert after == before + 4
    async with aiohttp.ClientSession() as http:
        url = f"{sim.rest_url}/api/v3/aggTrades?symbol=BTCUSDT&fromId={before + 1}&limit=3"
        async with http.get(url) as response:
            assert [row["a"] for row in await response.json()] == [
                before + 1,
                before + 2,
                before + 3,
            ]
    truth = sim.history.agg_trades_between("BTCUSDT", before + 1, before + 3)
    assert [agg.agg_trade_id for agg in truth] == [before + 1, before + 2, before + 3]


async def test_depth_gap_breaks_the_pu_chain(simulator: Start) -> None:
    sim = await simulator(
        market=Market.USDM, **ONE, start_paused=False, trades_per_second_per_symbol=300
    )
    async with connect(f"{sim.ws_url}/public/ws/btcusdt@depth@100ms") as ws:
        first = (await receive(ws, 1))[0]
        sim.inject("depth_gap", symbol="BTCUSDT")
        events = [first, *await receive(ws, 3)]
    assert any(b["pu"] != a["u"] for a, b in itertools.pairwise(events))


@pytest.mark.parametrize("kind", ["malformed", "truncated"])
async def test_bad_frames_are_not_json(simulator: Start, kind: str) -> None:
    sim = await simulator(**ONE)
    async with connect(f"{sim.ws_url}/ws/btcusdt@aggTrade") as ws:
        await sim.wait_for_subscribers(1)
        sim.inject(kind)
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(await asyncio.wait_for(ws.recv(), 2))


async def test_an_oversized_frame_breaks_a_default_client(simulator: Start) -> None:
    sim = await simulator(**ONE)
    async with connect(f"{sim.ws_url}/ws/btcusdt@aggTrade") as ws:
        await sim.wait_for_subscribers(1)
        sim.inject("oversized")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 2)
        assert closed.value.sent is not None and closed.value.sent.code == 1009


async def test_unknown_events_and_new_fields(simulator: Start) -> None:
    sim = await simulator(**ONE)
    async with connect(f"{sim.ws_url}/stream?streams=btcusdt@aggTrade") as ws:
        await sim.wait_for_subscribers(1)
        sim.inject("unknown_event")
        novelty = (await receive(ws, 1))[0]
        assert novelty["data"]["e"] == "simulatorNovelty"
        sim.inject("extra_field", count=1)
        sim.run_for(trades_per_symbol=2)
        await sim.wait_idle(timeout_s=5)
        extended, plain = [frame["data"] for frame in await receive(ws, 2)]
    assert set(extended) - set(plain) == {"zz"}


async def test_server_shutdown_is_announced_then_the_connection_closes(simulator: Start) -> None:
    sim = await simulator(**ONE)
    async with connect(f"{sim.ws_url}/stream?streams=btcusdt@aggTrade") as ws:
        await sim.wait_for_subscribers(1)
        sim.inject("server_shutdown", close_after_s=0.05)
        notice = (await receive(ws, 1))[0]
        assert notice["stream"] == "!serverShutdown" and notice["data"]["e"] == "serverShutdown"
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 2)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


async def test_rest_faults_over_http(simulator: Start) -> None:
    sim = await simulator(**ONE)
    async with aiohttp.ClientSession() as http:
        control = f"{sim.rest_url}/_simulator/faults"
        async with http.post(control, json={"kind": "slow_rest", "seconds": 0.3}) as response:
            assert response.status == 200
        started = time.monotonic()
        async with http.get(f"{sim.rest_url}/api/v3/ping") as response:
            assert response.status == 200
        assert time.monotonic() - started >= 0.3
        async with http.post(control, json={"kind": "rest_error", "status": 503, "count": 2}):
            pass
        for expected in (503, 503, 200):
            async with http.get(f"{sim.rest_url}/api/v3/ping") as response:
                assert response.status == expected
        async with http.post(control, json={"kind": "no-such-fault"}) as response:
            assert response.status == 400


async def test_a_random_mix_injects_faults_at_its_rate(simulator: Start) -> None:
    sim = await simulator(
        **ONE,
        fault_rate=50,
        fault_kinds=("unknown_event", "extra_field"),
        start_paused=False,
        trades_per_second_per_symbol=100,
    )
    async with connect(f"{sim.ws_url}/ws/btcusdt@aggTrade") as ws:
        frame = await receive_until(ws, lambda f: f.get("e") == "simulatorNovelty" or "zz" in f)
        assert frame
    assert sim.faults.injected
