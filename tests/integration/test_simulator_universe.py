"""The full ~2,000-symbol universe starts at once and serves every symbol."""

from __future__ import annotations

import aiohttp
from websockets.asyncio.client import connect

from gateway.simulator.config import simulated_symbols
from tests.integration.test_simulator_support import Start, receive, simulator

__all__ = ["simulator"]


async def test_two_thousand_symbols(simulator: Start) -> None:
    sim = await simulator(symbols=simulated_symbols(2_000))
    last = sim.specs[-1].symbol
    url = f"{sim.rest_url}/api/v3/exchangeInfo"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert len((await response.json())["symbols"]) == 2_000
    async with connect(f"{sim.ws_url}/ws/{last.lower()}@aggTrade/!miniTicker@arr") as ws:
        await sim.wait_for_subscribers(2)
        sim.run_for(trades_per_symbol=1)
        await sim.wait_idle(timeout_s=10)
        frames = await receive(ws, 2)
    agg = next(f for f in frames if isinstance(f, dict))
    assert agg["s"] == last and agg["a"] == sim.specs[-1].first_agg_trade_id
    tickers = next(f for f in frames if isinstance(f, list))
    assert len(tickers) == 2_000  # every symbol traded since the last array
