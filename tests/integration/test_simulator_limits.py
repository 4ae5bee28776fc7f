"""Binance's limits, enforced over real sockets the way docs/binance.md §2 and §7 describe them."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gateway.simulator import SimulatorConfig
from gateway.simulator.markets import Market
from tests.integration.test_simulator_support import Start, request, simulator

__all__ = ["simulator"]


@pytest.mark.parametrize(
    ("market", "interval", "timeout", "messages"),
    [
        (Market.SPOT, 20.0, 60.0, 5),
        (Market.USDM, 180.0, 600.0, 10),
        (Market.COINM, 180.0, 600.0, 10),
    ],
)
def test_each_market_has_its_documented_keepalive_and_message_rate(
    market: Market, interval: float, timeout: float, messages: int
) -> None:
    config = SimulatorConfig(market=market)
    assert (config.ping_interval_s, config.ping_timeout_s) == (interval, timeout)
    assert config.max_incoming_messages_per_s == messages
    assert config.connection_lifetime_s == 86_400


async def test_a_client_that_stops_reading_is_cut_after_interval_plus_timeout(
    simulator: Start,
) -> None:
    sim = await simulator(
        market=Market.USDM, symbols=("BTCUSDT",), ping_interval_s=0.2, ping_timeout_s=0.2
    )
    async with connect(f"{sim.ws_url}/market/ws/btcusdt@aggTrade", ping_interval=None) as ws:
        ws.transport.pause_reading()  # the pings pile up unanswered
        await asyncio.sleep(1.0)
        ws.transport.resume_reading()
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 2)
    assert not any(c.is_open for c in sim.connections())


async def test_futures_allow_ten_messages_a_second_and_cut_the_eleventh(simulator: Start) -> None:
    sim = await simulator(market=Market.USDM, symbols=("BTCUSDT",))
    async with connect(f"{sim.ws_url}/market/ws") as ws:
        for i in range(10):
            assert (await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": i}))["id"] == i
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":99}')
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 2)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_connection_attempts_per_ip_are_capped(simulator: Start) -> None:
    sim = await simulator(
        symbols=("BTCUSDT",), max_connection_attempts=3, connection_attempt_window_s=60
    )
    for _ in range(3):
        async with connect(f"{sim.ws_url}/ws/btcusdt@trade"):
            pass
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{sim.ws_url}/ws/btcusdt@trade"):
            pass
    assert refused.value.response.status_code == 429


async def test_the_24_hour_cut_is_configurable(simulator: Start) -> None:
    sim = await simulator(market=Market.COINM, symbols=("BTCUSD_PERP",), connection_lifetime_s=0.3)
    async with connect(f"{sim.ws_url}/ws/btcusd_perp@aggTrade") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 2)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


@pytest.mark.parametrize(
    ("market", "path", "weight"),
    [
        (Market.SPOT, "/api/v3/depth?symbol=BTCUSDT&limit=500", 25),
        (Market.SPOT, "/api/v3/depth?symbol=BTCUSDT&limit=5000", 250),
        (Market.SPOT, "/api/v3/klines?symbol=BTCUSDT&interval=1m", 2),
        (Market.SPOT, "/api/v3/aggTrades?symbol=BTCUSDT", 4),
        (Market.USDM, "/fapi/v1/depth?symbol=BTCUSDT&limit=1000", 20),
        (Market.USDM, "/fapi/v1/aggTrades?symbol=BTCUSDT", 20),
        (Market.USDM, "/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=1000", 5),
    ],
)
async def test_rest_weights_are_reported(
    simulator: Start, market: Market, path: str, weight: int
) -> None:
    sim = await simulator(market=market, symbols=("BTCUSDT",))
    async with aiohttp.ClientSession() as http, http.get(sim.rest_url + path) as response:
        assert response.status == 200
        assert response.headers["X-MBX-USED-WEIGHT-1M"] == str(weight)


async def test_over_the_weight_budget_429_then_418_both_with_retry_after(simulator: Start) -> None:
    sim = await simulator(
        symbols=("BTCUSDT",), rest_weight_limit=50, rest_weight_window_s=30, rest_ban_s=5
    )
    url = f"{sim.rest_url}/api/v3/exchangeInfo"  # weight 20
    async with aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(4):
            async with http.get(url) as response:
                statuses.append((response.status, response.headers.get("Retry-After")))
                body = await response.json()
        assert [s for s, _ in statuses] == [200, 200, 429, 418]
        assert statuses[2][1] is not None and 1 <= int(statuses[2][1]) <= 30
        assert statuses[3][1] == "5"
        assert body["code"] == -1003 and "banned" in body["msg"]
        async with http.get(f"{sim.rest_url}/api/v3/ping") as response:
            assert response.status == 418  # still banned, whatever the weight
