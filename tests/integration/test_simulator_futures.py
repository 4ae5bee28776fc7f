"""USD-M and COIN-M over real sockets: routes, periodic streams, depth consistent with REST."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect

from gateway.simulator.markets import Market
from tests.integration.test_simulator_support import (
    Start,
    receive,
    receive_until,
    request,
    silent_for,
    simulator,
)

__all__ = ["simulator"]
USDM = {"market": Market.USDM, "symbols": ("BTCUSDT", "ETHUSDT")}
COINM = {"market": Market.COINM, "symbols": ("BTCUSD_PERP", "ETHUSD_PERP")}


async def test_usdm_routes_deliver_their_streams_and_unrouted_connections_only_public_ones(
    simulator: Start,
) -> None:
    sim = await simulator(**USDM)
    public = connect(f"{sim.ws_url}/public/ws/btcusdt@bookTicker")
    market = connect(f"{sim.ws_url}/market/stream?streams=btcusdt@aggTrade/btcusdt@bookTicker")
    unrouted = connect(f"{sim.ws_url}/ws/btcusdt@aggTrade/btcusdt@bookTicker")
    async with public as pub, market as mkt, unrouted as legacy:
        await sim.wait_for_subscribers(5)
        sim.run_for(trades_per_symbol=20)
        await sim.wait_idle(timeout_s=5)
        assert (await receive(pub, 1))[0]["e"] == "bookTicker"
        frame = (await receive(mkt, 1))[0]
        assert frame["stream"] == "btcusdt@aggTrade"  # bookTicker is not on /market
        # "st" since the 2026-06-30 integration (docs/futures-merger.md §1).
        assert set(frame["data"]) == {"e", "E", "s", "a", "p", "q", "nq", "f", "l", "T", "m", "st"}
        assert (await receive(legacy, 1))[0]["e"] == "bookTicker"  # public only
        while not await silent_for(legacy, 0.2):
            pass
        reply = await request(legacy, {"method": "LIST_SUBSCRIPTIONS", "id": 7})
        assert reply == {"result": ["btcusdt@aggTrade", "btcusdt@bookTicker"], "id": 7}


async def test_futures_control_ids_must_be_unsigned_integers(simulator: Start) -> None:
    sim = await simulator(**USDM)
    async with connect(f"{sim.ws_url}/market/ws") as ws:
        assert await request(
            ws, {"method": "SUBSCRIBE", "params": ["btcusdt@markPrice"], "id": 1}
        ) == {
            "result": None,
            "id": 1,
        }
        error = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": "abc"})
        assert error == {
            "code": 2,
            "msg": "Invalid request: request ID must be an unsigned integer",
        }


@pytest.mark.parametrize("config", [USDM, COINM], ids=["usdm", "coinm"])
async def test_diff_depth_over_sockets_continues_the_rest_snapshot(
    simulator: Start, config: dict[str, Any]
) -> None:
    sim = await simulator(**config, trades_per_second_per_symbol=200, start_paused=False)
    symbol = sim.specs[0].symbol
    route = "/public" if config is USDM else ""
    rest_path = "/fapi/v1/depth" if config is USDM else "/dapi/v1/depth"
    async with connect(f"{sim.ws_url}{route}/ws/{symbol.lower()}@depth@100ms") as ws:
        first = (await receive(ws, 1))[0]
        async with aiohttp.ClientSession() as http:
            url = f"{sim.rest_url}{rest_path}?symbol={symbol}&limit=1000"
            async with http.get(url) as response:
                snapshot = await response.json()
                assert "X-MBX-USED-WEIGHT-1M" in response.headers
        assert snapshot["lastUpdateId"] >= first["U"]
        book = {("b", p): q for p, q in snapshot["bids"]} | {
            ("a", p): q for p, q in snapshot["asks"]
        }
        last_u = None
        for event in [first, *await receive(ws, 10)]:  # buffered from before the snapshot
            if event["u"] < snapshot["lastUpdateId"]:
                continue
            if last_u is None:
                assert event["U"] <= snapshot["lastUpdateId"] <= event["u"]
            else:
                assert event["pu"] == last_u
            for side in ("b", "a"):
                for price, qty in event[side]:
                    if float(qty):
                        book[(side, price)] = qty
                    else:
                        book.pop((side, price), None)
            last_u = event["u"]
        assert last_u is not None
        sim.pause()


async def test_coinm_serves_pair_streams_and_its_own_rest_paths(simulator: Start) -> None:
    sim = await simulator(**COINM, start_paused=False, trades_per_second_per_symbol=50)
    names = "btcusd@indexPrice@1s/btcusd@markPrice@1s/btcusd_perp@markPriceKline_1m"
    async with connect(f"{sim.ws_url}/stream?streams={names}") as ws:
        seen: set[str] = set()
        while len(seen) < 3:
            seen.add((await receive(ws, 1))[0]["stream"])
        pair_marks = await receive_until(ws, lambda f: f["stream"] == "btcusd@markPrice@1s")
        assert [m["s"] for m in pair_marks["data"]] == ["BTCUSD_PERP"]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sim.rest_url}/dapi/v1/exchangeInfo") as response:
            info = await response.json()
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSD_PERP", "ETHUSD_PERP"]
        async with http.get(f"{sim.rest_url}/api/v3/exchangeInfo") as response:
            assert response.status == 404


async def test_klines_close_when_their_window_rolls_over(simulator: Start) -> None:
    clock = iter(range(1_700_000_000_000_000, 10**18, 400_000)).__next__  # 0.4 s per reading
    sim = await simulator(
        market=Market.USDM,
        symbols=("BTCUSDT",),
        clock_us=clock,
        start_paused=False,
        trades_per_second_per_symbol=100,
    )
    async with connect(f"{sim.ws_url}/market/ws/btcusdt@kline_1m") as ws:
        closed = await receive_until(ws, lambda f: f["k"]["x"])
        following = (await receive(ws, 1))[0]
        assert following["k"]["t"] == closed["k"]["T"] + 1 and not following["k"]["x"]


async def test_rest_klines_and_continuous_klines_are_the_candles_the_streams_closed(
    simulator: Start,
) -> None:
    """What a gateway recovering a kline hole fetches is what the stream would have carried."""
    clock = iter(range(1_700_000_000_000_000, 10**18, 400_000)).__next__  # 0.4 s per reading
    sim = await simulator(
        market=Market.USDM,
        symbols=("BTCUSDT",),
        clock_us=clock,
        start_paused=False,
        trades_per_second_per_symbol=100,
    )
    names = "btcusdt@kline_1m/btcusdt_perpetual@continuousKline_1m"
    closed: dict[str, dict[str, Any]] = {}
    async with connect(f"{sim.ws_url}/market/stream?streams={names}") as ws:
        while len(closed) < 2:
            frame = await receive_until(ws, lambda f: f["data"]["k"]["x"])
            closed.setdefault(frame["stream"], frame["data"]["k"])
    paths = {
        "btcusdt@kline_1m": "/fapi/v1/klines?symbol=BTCUSDT",
        "btcusdt_perpetual@continuousKline_1m": (
            "/fapi/v1/continuousKlines?pair=BTCUSDT&contractType=PERPETUAL"
        ),
    }
    async with aiohttp.ClientSession() as http:
        for stream, bar in closed.items():
            url = f"{sim.rest_url}{paths[stream]}&interval=1m&startTime={bar['t']}&limit=1"
            async with http.get(url) as response:
                assert response.status == 200, await response.text()
                assert int(response.headers["X-MBX-USED-WEIGHT-1M"]) >= 1
                [row] = await response.json()
            keys = ("t", "o", "h", "l", "c", "v", "T", "q", "n", "V", "Q")
            assert row[:11] == [bar[k] for k in keys], stream
        bad = (
            f"{sim.rest_url}/fapi/v1/continuousKlines?pair=NOPE&contractType=PERPETUAL&interval=1m"
        )
        async with http.get(bad) as response:
            assert response.status == 400


async def test_usdm_trades_stream_on_public_only_and_rest_serves_them_by_id_with_a_key(
    simulator: Start,
) -> None:
    sim = await simulator(**USDM)
    public = connect(f"{sim.ws_url}/public/stream?streams=btcusdt@trade")
    market = connect(f"{sim.ws_url}/market/stream?streams=btcusdt@trade/btcusdt@aggTrade")
    async with public as pub, market as mkt:
        await sim.wait_for_subscribers(3)
        sim.run_for(trades_per_symbol=20)
        await sim.wait_idle(timeout_s=5)
        trades = [frame["data"] for frame in await receive(pub, 20)]
        # Binance's undocumented futures trade: spot's keys plus X, without M.
        assert set(trades[0]) == {"e", "E", "T", "s", "t", "p", "q", "X", "m"}
        assert trades == sim.history.trades("BTCUSDT")[:20]
        assert {frame["stream"] for frame in await receive(mkt, 5)} == {"btcusdt@aggTrade"}
    first = trades[0]["t"]
    async with aiohttp.ClientSession() as http:
        url = f"{sim.rest_url}/fapi/v1/historicalTrades?symbol=BTCUSDT&fromId={first}&limit=3"
        async with http.get(url) as response:
            assert response.status == 401  # MARKET_DATA: no key, no trades
            used = int(response.headers["X-MBX-USED-WEIGHT-1M"])
        async with http.get(url, headers={"X-MBX-APIKEY": "simulator-key"}) as response:
            assert [row["id"] for row in await response.json()] == [first, first + 1, first + 2]
            assert int(response.headers["X-MBX-USED-WEIGHT-1M"]) - used == 200
        async with http.get(f"{sim.rest_url}/fapi/v1/trades?symbol=BTCUSDT&limit=2") as response:
            latest = [row["id"] for row in await response.json()]
    assert latest == [t["t"] for t in sim.history.trades("BTCUSDT")[-2:]]


async def test_coinm_serves_trades_and_pair_keyed_names_only(simulator: Start) -> None:
    sim = await simulator(**COINM)
    names = "btcusd_perp@trade/btcusd@indexPrice/btcusd_perpetual@continuousKline_1m"
    async with connect(f"{sim.ws_url}/stream?streams={names}") as ws:
        await sim.wait_for_subscribers(1)
        sim.run_for(trades_per_symbol=5)
        await sim.wait_idle(timeout_s=5)
        seen: set[str] = set()
        while seen != {"btcusd_perp@trade", "btcusd@indexPrice"}:
            frame = await receive_until(ws, lambda f: f["stream"] != "btcusd_perpetual@x")
            if frame["stream"] != "btcusd_perpetual@continuousKline_1m":
                seen.add(frame["stream"])
    # A symbol where Binance wants the pair is not a stream Binance knows.
    async with connect(f"{sim.ws_url}/ws/btcusd_perp@indexPrice") as ws:
        await ws.wait_closed()
        assert ws.close_code == 1008
