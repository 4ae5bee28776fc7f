"""The REST client against a real HTTP server: JSON, weights, 429 back-off, clear errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from gateway.adapters.binance_rest import BinanceRestClient
from gateway.binance.markets import Market
from gateway.binance.policy import RestPriority, RestWeightBudget
from gateway.errors import RestRequestError

# The server's base URL and the time of each call to aggTrades.
Server = tuple[str, list[float]]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    calls: list[float] = []
    state = {"limited": 1}

    async def agg_trades(request: web.Request) -> web.Response:
        calls.append(time.monotonic())
        if state["limited"]:
            state["limited"] -= 1
            return web.json_response({"code": -1003, "msg": "Too many requests"}, status=429,
                                     headers={"Retry-After": "0.3", "X-MBX-USED-WEIGHT-1M": "10"})  # fmt: skip
        return web.json_response(
            [{"a": int(request.query["fromId"])}], headers={"X-MBX-USED-WEIGHT-1M": "8"}
        )

    async def broken(request: web.Request) -> web.Response:
        return web.Response(text="<html>gateway timeout</html>", status=504)

    async def huge(request: web.Request) -> web.Response:
        return web.Response(body=b"[" + b"1," * 600_000 + b"1]", content_type="application/json")

    async def truncated(request: web.Request) -> web.Response:
        return web.Response(body=b'[{"a": 1, "p": "0.0', content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v3/huge", huge)
    app.router.add_get("/api/v3/truncated", truncated)
    app.router.add_get("/api/v3/aggTrades", agg_trades)
    app.router.add_get("/api/v3/broken", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", calls
    await runner.cleanup()


async def test_a_429_blocks_every_request_until_retry_after_then_succeeds(server: Server) -> None:
    url, calls = server
    budget = RestWeightBudget(6000)
    async with BinanceRestClient(url, Market.SPOT, budget=budget) as client:
        with pytest.raises(RestRequestError) as info:
            await client.get("/api/v3/aggTrades", {"fromId": "5"}, weight=4)
        assert info.value.status == 429
        assert info.value.retriable
        rows = await client.get("/api/v3/aggTrades", {"fromId": "7"}, weight=4)
    assert rows == [{"a": 7}]
    assert calls[1] - calls[0] >= 0.25  # waited out Retry-After instead of hammering
    assert budget.delay(4, time.time()) == 0  # Binance's own weight count (8) was taken


async def test_non_json_and_unreachable_are_clear_retriable_errors(server: Server) -> None:
    url, _ = server
    async with BinanceRestClient(url, Market.SPOT) as client:
        with pytest.raises(RestRequestError, match="HTTP 504"):
            await client.get("/api/v3/broken", weight=1)
    async with BinanceRestClient("http://127.0.0.1:1", Market.SPOT) as client:
        with pytest.raises(RestRequestError, match="unreachable"):
            await client.get("/api/v3/ping", weight=1)


async def test_huge_and_truncated_answers_are_retriable_errors_not_crashes(server: Server) -> None:
    url, _ = server
    async with BinanceRestClient(url, Market.SPOT, max_body_bytes=1_000_000) as client:
        with pytest.raises(RestRequestError, match="more than 1000000 bytes"):
            await client.get("/api/v3/huge", weight=1)
        with pytest.raises(RestRequestError, match="not JSON"):
            await client.get("/api/v3/truncated", weight=1)


class SpentOnBackfill(RestWeightBudget):
    """A minute whose share for backfill and probes is spent; the reserve is not."""

    def delay(
        self, weight: int, now: float, priority: RestPriority = RestPriority.CONTROL
    ) -> float:
        return 30.0 if priority >= RestPriority.BACKFILL else 0.0


async def test_exchange_info_goes_ahead_of_a_backfill_waiting_for_the_budget(
    server: Server,
) -> None:
    url, calls = server
    async with BinanceRestClient(url, Market.SPOT, budget=SpentOnBackfill(6000)) as client:
        backfill = asyncio.create_task(
            client.get("/api/v3/aggTrades", {"fromId": "1"}, weight=4,
                       priority=RestPriority.BACKFILL)
        )  # fmt: skip
        await asyncio.sleep(0.1)  # it waits for the next minute, first in line
        started = time.monotonic()
        with pytest.raises(RestRequestError):  # the fixture's one 429: answered, not queued
            await client.get("/api/v3/aggTrades", {"fromId": "2"}, weight=4)
        rows = await client.get("/api/v3/aggTrades", {"fromId": "3"}, weight=4)
        assert rows == [{"a": 3}]
        assert time.monotonic() - started < 5  # not behind the backfill's 30 s
        assert not backfill.done()
        backfill.cancel()  # a cancelled waiter leaves the line; the next goes at once
        with pytest.raises(asyncio.CancelledError):
            await backfill
        rows = await client.get("/api/v3/aggTrades", {"fromId": "4"}, weight=4,
                                priority=RestPriority.SNAPSHOT)  # fmt: skip
    assert rows == [{"a": 4}]
    assert len(calls) == 3  # the backfill never went out
