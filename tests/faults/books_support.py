"""The exchange's side of the order-book tests: its book as its REST depth answers it."""

from __future__ import annotations

from decimal import Decimal

import aiohttp

DEPTH_PATHS = {"spot": "/api/v3/depth", "usdm": "/fapi/v1/depth", "coinm": "/dapi/v1/depth"}
Side = dict[Decimal, Decimal]  # price -> quantity, no empty level


async def exchange_book(rest_url: str, market: str, symbol: str) -> tuple[Side, Side]:
    """(bids, asks) of ``symbol`` from the exchange's REST depth at its full 1000 levels."""
    async with aiohttp.ClientSession() as http:
        url = f"{rest_url}{DEPTH_PATHS[market]}?symbol={symbol}&limit=1000"
        async with http.get(url) as response:
            body = await response.json()

    def side(levels: list[list[str]]) -> Side:
        return {Decimal(p): Decimal(q) for p, q in levels if Decimal(q)}

    return side(body["bids"]), side(body["asks"])
