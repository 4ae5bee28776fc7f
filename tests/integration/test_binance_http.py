"""The one Binance HTTP transport, proven once for both of its callers over a loopback server.

The market client (``BinanceRestClient.get``) and an account's client (``SignedRestClient``)
must read 429/418, ``Retry-After`` and the used weight the same way: that drift is why they share
one transport.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from gateway.accounts.rest import AccountRequestError, SignedRestClient
from gateway.adapters.binance_http import API_KEY_HEADER, BinanceHttpTransport
from gateway.adapters.binance_rest import BinanceRestClient
from gateway.binance.markets import Market
from gateway.binance.policy import RestWeightBudget
from gateway.binance.signing import KeyType, Signer, verify
from gateway.errors import RestRequestError

SECRET = b"s3cret"
PATH = "/api/v3/account"


@dataclass
class Peer:
    """A scripted Binance: answers each request with the next queued refusal, then 200."""

    url: str = ""
    refusals: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    calls: list[float] = field(default_factory=list)
    requests: list[web.Request] = field(default_factory=list)


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    peer = Peer()

    async def answer(request: web.Request) -> web.Response:
        peer.calls.append(time.monotonic())
        peer.requests.append(request)
        if peer.refusals:
            status, headers = peer.refusals.pop(0)
            body = {"code": -1003, "msg": "Too many requests"}
            return web.json_response(body, status=status, headers=headers)
        return web.json_response({"ok": True}, headers={"X-MBX-USED-WEIGHT-1M": "8"})

    app = web.Application()
    app.router.add_get(PATH, answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    peer.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield peer
    await runner.cleanup()


Call = Callable[[BinanceHttpTransport], Awaitable[Any]]


def market(url: str, budget: RestWeightBudget) -> tuple[BinanceHttpTransport, Call]:
    async def call(client: BinanceHttpTransport) -> Any:
        assert isinstance(client, BinanceRestClient)
        return await client.get(PATH, {"symbol": "BTCUSDT"}, weight=4)

    return BinanceRestClient(url, Market.SPOT, budget=budget), call


def account(url: str, budget: RestWeightBudget) -> tuple[BinanceHttpTransport, Call]:
    async def call(client: BinanceHttpTransport) -> Any:
        assert isinstance(client, SignedRestClient)
        return await client.request("GET", PATH, {"symbol": "BTCUSDT"}, weight=4, signed=True)

    client = SignedRestClient(
        url, Market.SPOT, SecretStr("k3y"), Signer(KeyType.HMAC, SECRET), budget=budget
    )
    return client, call


Caller = Callable[[str, RestWeightBudget], tuple[BinanceHttpTransport, Call]]
CALLERS = pytest.mark.parametrize("caller", [market, account], ids=["market", "account"])


@CALLERS
@pytest.mark.parametrize("status", [429, 418])
async def test_a_refusal_blocks_every_request_until_retry_after(
    peer: Peer, caller: Caller, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    peer.refusals.append((status, {"Retry-After": "0.3", "X-MBX-USED-WEIGHT-1M": "10"}))
    budget = RestWeightBudget(6000)
    client, call = caller(peer.url, budget)
    async with client:
        with (
            caplog.at_level(logging.WARNING, "gateway.adapters.binance_http"),
            pytest.raises(RestRequestError) as info,
        ):
            await call(client)
        assert info.value.status == status
        assert info.value.retriable
        assert await call(client) == {"ok": True}
    # A fractional Retry-After is honoured (not read as absent, which would mean 60 s).
    assert 0.25 <= peer.calls[1] - peer.calls[0] < 5
    assert budget.used(time.time()) == 8  # Binance's own count wins over our estimate
    [warning] = [r.getMessage() for r in caplog.records]
    assert f"answered {status}" in warning and "0.3s" in warning
    assert "signature" not in warning


@CALLERS
async def test_an_unreadable_retry_after_backs_off_a_minute(peer: Peer, caller: Caller) -> None:
    peer.refusals.append((429, {"Retry-After": "soon"}))
    budget = RestWeightBudget(6000)
    client, call = caller(peer.url, budget)
    async with client:
        with pytest.raises(RestRequestError):
            await call(client)
    assert budget.delay(1, time.time()) > 55


async def test_an_account_refusal_carries_binances_code_and_the_request_is_signed(
    peer: Peer,
) -> None:
    peer.refusals.append((400, {}))
    client, call = account(peer.url, RestWeightBudget(6000))
    async with client:
        with pytest.raises(AccountRequestError) as info:
            await call(client)
        assert info.value.code == -1003
        assert "signature" not in str(info.value)  # the query never reaches a message
        await call(client)
    request = peer.requests[-1]
    assert request.headers[API_KEY_HEADER] == "k3y"
    payload, signature = request.query_string.rsplit("&signature=", 1)
    assert payload.startswith("symbol=BTCUSDT&timestamp=")
    assert verify(KeyType.HMAC, SECRET, payload, signature)


async def test_the_market_caller_sends_no_key(peer: Peer) -> None:
    client, call = market(peer.url, RestWeightBudget(6000))
    async with client:
        await call(client)
    assert API_KEY_HEADER not in peer.requests[-1].headers
    assert peer.requests[-1].query_string == "symbol=BTCUSDT"
