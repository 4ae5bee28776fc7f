"""User data over real sockets: futures listen keys on /private, spot's signed WS API stream."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gateway.simulator.markets import Market
from gateway.simulator.userdata import sign
from tests.integration.test_simulator_support import Start, receive, request, simulator

__all__ = ["simulator"]
KEY = {"X-MBX-APIKEY": "simulator-key"}


async def listen_key(http: aiohttp.ClientSession, rest_url: str, prefix: str = "/fapi/v1") -> str:
    async with http.post(f"{rest_url}{prefix}/listenKey", headers=KEY) as response:
        assert response.status == 200
        return str((await response.json())["listenKey"])


async def test_listen_keys_are_created_extended_and_closed(simulator: Start) -> None:
    sim = await simulator(market=Market.USDM, symbols=("BTCUSDT",))
    async with aiohttp.ClientSession() as http:
        key = await listen_key(http, sim.rest_url)
        assert len(key) == 64 and await listen_key(http, sim.rest_url) == key  # the active one
        url = f"{sim.rest_url}/fapi/v1/listenKey"
        async with http.put(url, headers=KEY, params={"listenKey": key}) as response:
            assert await response.json() == {"listenKey": key}
        async with http.delete(url, headers=KEY, params={"listenKey": key}) as response:
            assert await response.json() == {}
        async with http.put(url, headers=KEY, params={"listenKey": key}) as response:
            assert response.status == 400
            assert await response.json() == {"code": -1125, "msg": "This listenKey does not exist."}
        async with http.post(url) as response:
            assert response.status == 401


async def test_private_route_delivers_the_accounts_events_filtered_by_type(
    simulator: Start,
) -> None:
    sim = await simulator(market=Market.USDM, symbols=("BTCUSDT",))
    async with aiohttp.ClientSession() as http:
        key = await listen_key(http, sim.rest_url)
    everything = connect(f"{sim.ws_url}/private/ws?listenKey={key}")
    filtered = connect(f"{sim.ws_url}/private/stream?listenKey={key}&events=TRADE_LITE")
    async with everything as raw, filtered as combined:
        await sim.wait_for_subscribers(2)
        pushed = await sim.emit_user_fill("BTCUSDT", "BUY")
        assert pushed == [
            "ORDER_TRADE_UPDATE",
            "TRADE_LITE",
            "ORDER_TRADE_UPDATE",
            "ACCOUNT_UPDATE",
        ]
        assert [e["e"] for e in await receive(raw, 4)] == pushed
        (only,) = await receive(combined, 1)
        assert only["stream"] == key and only["data"]["e"] == "TRADE_LITE"


async def test_an_expired_listen_key_says_so_and_closes(simulator: Start) -> None:
    sim = await simulator(market=Market.COINM, symbols=("BTCUSD_PERP",), listen_key_validity_s=0.3)
    async with aiohttp.ClientSession() as http:
        key = await listen_key(http, sim.rest_url, "/dapi/v1")
    async with connect(f"{sim.ws_url}/ws/{key}") as ws:  # COIN-M keeps the legacy form
        (expired,) = await receive(ws, 1)
        assert expired == {"e": "listenKeyExpired", "E": expired["E"], "listenKey": key}
        assert isinstance(expired["E"], str)  # as the futures docs show it
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 2)


async def test_private_route_refuses_unknown_listen_keys(simulator: Start) -> None:
    sim = await simulator(market=Market.USDM, symbols=("BTCUSDT",))
    async with connect(f"{sim.ws_url}/private/ws?listenKey=nope") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 2)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def signed(api_key: str, secret: str, timestamp: int, request_id: str = "s1") -> str:
    params = {"apiKey": api_key, "timestamp": timestamp}
    params["signature"] = sign(secret, params)
    return orjson.dumps(
        {"id": request_id, "method": "userDataStream.subscribe.signature", "params": params}
    ).decode()


async def test_spot_user_data_over_the_ws_api_with_a_checked_signature(simulator: Start) -> None:
    sim = await simulator(symbols=("BTCUSDT",))
    async with connect(f"{sim.ws_url}/ws-api/v3") as ws:
        now_ms = int(time.time() * 1_000)
        await ws.send(signed("simulator-key", "wrong-secret", now_ms, "bad"))
        refused = orjson.loads(await ws.recv())
        assert refused["status"] == 400 and refused["error"]["code"] == -1022
        await ws.send(signed("simulator-key", "simulator-secret", now_ms - 60_000, "stale"))
        assert orjson.loads(await ws.recv())["error"]["code"] == -1021
        await ws.send(signed("simulator-key", "simulator-secret", now_ms))
        assert orjson.loads(await ws.recv()) == {
            "id": "s1",
            "status": 200,
            "result": {"subscriptionId": 0},
        }
        pushed = await sim.emit_user_fill("BTCUSDT", "SELL")
        events = await receive(ws, len(pushed))
        assert [e["subscriptionId"] for e in events] == [0] * len(pushed)
        assert [e["event"]["e"] for e in events] == pushed
        await ws.send('{"id":"u","method":"userDataStream.unsubscribe"}')
        assert orjson.loads(await ws.recv()) == {"id": "u", "status": 200, "result": {}}
        terminated = orjson.loads(await ws.recv())
        assert (
            terminated["subscriptionId"] == 0
            and terminated["event"]["e"] == "eventStreamTerminated"
        )


async def test_spot_listen_key_endpoints_are_retired(simulator: Start) -> None:
    sim = await simulator(symbols=("BTCUSDT",))
    async with aiohttp.ClientSession() as http:
        for method in ("POST", "PUT", "DELETE"):
            async with http.request(
                method, f"{sim.rest_url}/api/v3/userDataStream", headers=KEY
            ) as response:
                assert response.status == 404
    async with connect(f"{sim.ws_url}/ws") as ws:  # and no listen key is a stream name
        reply = await request(ws, {"method": "SUBSCRIBE", "params": ["a" * 64], "id": 1})
        assert reply["code"] == 2
