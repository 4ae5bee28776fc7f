"""Listings and delistings at run time: exchangeInfo, the streams and the history agree."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from gateway.adapters.binance_rest import BinanceRestClient
from gateway.binance.exchange_info import ListedSymbol
from gateway.binance.markets import Market as GatewayMarket
from gateway.simulator import FaultKind, Market
from gateway.simulator.cli import parse_fault_kinds
from tests.integration.test_simulator_support import Start, receive, simulator

__all__ = ["simulator"]

SPOT = {"symbols": ("BTCUSDT", "ETHUSDT")}


async def assert_nothing_more(ws: Any) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await ws.recv()


async def exchange_info(sim: Any, prefix: str = "/api/v3") -> dict[str, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{sim.rest_url}{prefix}/exchangeInfo") as r,
    ):
        assert r.status == 200
        return {entry["symbol"]: entry for entry in (await r.json())["symbols"]}


async def test_a_listed_symbol_trades_and_exchange_info_shows_it(simulator: Start) -> None:
    sim = await simulator(**SPOT)
    # Before the listing the stream does not exist: the simulator refuses it, as configured.
    with pytest.raises(ConnectionClosedError):
        async with connect(f"{sim.ws_url}/ws/solusdt@trade") as ws:
            await ws.recv()
    spec = sim.list_symbol("solusdt")
    assert spec.symbol == "SOLUSDT"
    assert {s.first_trade_id for s in sim.specs} == {100_000_000, 200_000_000, 300_000_000}
    assert (await exchange_info(sim))["SOLUSDT"]["status"] == "TRADING"
    async with connect(f"{sim.ws_url}/ws/solusdt@trade") as ws:
        await sim.wait_for_subscribers(["solusdt@trade"])
        sim.run_for(trades_per_symbol=5)
        await sim.wait_idle(timeout_s=5)
        frames = await receive(ws, 5)
    assert frames == sim.history.trades("SOLUSDT")
    assert [f["t"] for f in frames] == list(range(spec.first_trade_id, spec.first_trade_id + 5))
    assert sim.trades_generated("BTCUSDT") == 5  # the others traded on as before


async def test_a_delisted_symbol_goes_silent_and_exchange_info_says_break(simulator: Start) -> None:
    sim = await simulator(**SPOT)
    names = ["btcusdt@aggTrade", "ethusdt@aggTrade", "ethusdt@depth@100ms", "ethusdt@kline_1s"]
    async with connect(sim.combined_url(names)) as ws:
        await sim.wait_for_subscribers(names)
        sim.delist_symbol("ETHUSDT")
        sim.run_for(trades_per_symbol=20)
        await sim.wait_idle(timeout_s=5)  # the delisted symbol's budget does not hold it up
        frames = await receive(ws, len(sim.history.agg_trades("BTCUSDT")))
        assert {f["stream"] for f in frames} == {"btcusdt@aggTrade"}
        await asyncio.sleep(0.2)  # depth and klines would be due many times over by now
        await assert_nothing_more(ws)
    assert sim.history.trades("ETHUSDT") == []
    assert sim.trades_generated("ETHUSDT") == 0
    listed = await exchange_info(sim)
    assert (listed["ETHUSDT"]["status"], listed["BTCUSDT"]["status"]) == ("BREAK", "TRADING")


async def test_a_relisted_symbol_continues_its_ids(simulator: Start) -> None:
    sim = await simulator(**SPOT)
    sim.run_for(trades_per_symbol=3)
    await sim.wait_idle(timeout_s=5)
    sim.delist_symbol("BTCUSDT", "HALT")
    assert (await exchange_info(sim))["BTCUSDT"]["status"] == "HALT"
    sim.list_symbol("BTCUSDT")
    sim.run_for(trades_per_symbol=3)
    await sim.wait_idle(timeout_s=5)
    ids = [trade["t"] for trade in sim.history.trades("BTCUSDT")]
    assert ids == list(range(ids[0], ids[0] + 6))
    assert len(sim.specs) == 2


@pytest.mark.parametrize(
    ("market", "symbol", "prefix", "field"),
    [
        (Market.USDM, "BTCUSDT", "/fapi/v1", "status"),
        (Market.COINM, "BTCUSD_PERP", "/dapi/v1", "contractStatus"),
    ],
)
async def test_futures_contracts_settle_when_delisted(
    simulator: Start, market: Market, symbol: str, prefix: str, field: str
) -> None:
    sim = await simulator(market=market)
    sim.delist_symbol(symbol)
    assert (await exchange_info(sim, prefix))[symbol][field] == "SETTLING"
    sim.delist_symbol(symbol, "CLOSE")
    assert (await exchange_info(sim, prefix))[symbol][field] == "CLOSE"
    with pytest.raises(ValueError, match="SETTLING"):
        sim.delist_symbol(symbol, "BREAK")  # a spot state
    with pytest.raises(KeyError):
        sim.delist_symbol("NOPEUSDT")


async def test_listings_over_http_and_through_the_gateways_client(simulator: Start) -> None:
    sim = await simulator(**SPOT)
    control = f"{sim.rest_url}/_simulator/faults"
    async with aiohttp.ClientSession() as http:
        for body, status in [
            ({"kind": "list_symbol", "symbol": "SOLUSDT"}, 200),
            ({"kind": "delist_symbol", "symbol": "ETHUSDT"}, 200),
            ({"kind": "delist_symbol", "symbol": "BTCUSDT", "status": "TRADING"}, 400),
            ({"kind": "list_symbol", "symbol": "not a symbol"}, 400),
        ]:
            async with http.post(control, json=body) as response:
                assert response.status == status, await response.text()
    async with BinanceRestClient(sim.rest_url, GatewayMarket.SPOT) as client:
        listed = await client.exchange_info()
    assert listed == (
        ListedSymbol("BTCUSDT", "TRADING", "BTC", "USDT", None),
        ListedSymbol("ETHUSDT", "BREAK", "ETH", "USDT", None),
        ListedSymbol("SOLUSDT", "TRADING", "SOL", "USDT", None),
    )


async def test_the_random_mix_lists_and_delists_only_when_asked(simulator: Start) -> None:
    assert parse_fault_kinds("list_symbol,delist_symbol") == ("list_symbol", "delist_symbol")
    sim = await simulator(
        **SPOT, fault_rate=200.0, fault_kinds=("list_symbol", "delist_symbol"), seed=3
    )
    async with asyncio.timeout(5):
        wanted = {FaultKind.LIST_SYMBOL, FaultKind.DELIST_SYMBOL}
        while not wanted <= set(sim.faults.injected):  # noqa: ASYNC110 - a list, no event
            await asyncio.sleep(0.01)
    # Faults go on meanwhile: compare an answer with the specs it was served from (unchanged
    # across the request), or a listing between the two reads counts as a difference.
    for _ in range(50):
        before = len(sim.specs)
        listed = await exchange_info(sim)
        if len(sim.specs) == before:
            break
    assert len(listed) == before > 2
    assert {entry["status"] for entry in listed.values()} <= {"TRADING", "BREAK"}
    default_mix = await simulator(**SPOT, fault_rate=200.0, seed=3)
    await asyncio.sleep(0.2)
    assert default_mix.faults.injected
    assert not {FaultKind.LIST_SYMBOL, FaultKind.DELIST_SYMBOL} & set(default_mix.faults.injected)
