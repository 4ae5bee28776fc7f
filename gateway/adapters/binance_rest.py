"""Binance market REST: a paced client for market data and the reachability probe.

Pacing, 429/418 back-off and errors are the shared transport's
(:mod:`gateway.adapters.binance_http`); this module only names the market calls. One client per
market and process: Binance counts weight per IP, so every caller must share it.
"""

from __future__ import annotations

from typing import Any

from gateway.adapters.binance_http import USED_WEIGHT_HEADER, WEIGHT_LIMITS, BinanceHttpTransport
from gateway.binance.exchange_info import ListedSymbol, parse_exchange_info
from gateway.binance.markets import PING_PATHS, Market
from gateway.binance.policy import RestPriority
from gateway.binance.rest_payloads import exchange_info_call

__all__ = ["USED_WEIGHT_HEADER", "WEIGHT_LIMITS", "BinanceRestClient", "ping"]


async def ping(rest_url: str, market: Market, timeout_s: float) -> None:
    """GET the market's ping endpoint; RestRequestError says why it could not be reached."""
    async with BinanceRestClient(rest_url, market, timeout_s=timeout_s) as client:
        await client.get(PING_PATHS[market], weight=1)


class BinanceRestClient(BinanceHttpTransport):
    """GETs JSON from one market's REST API within its weight budget."""

    async def get(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        weight: int,
        headers: dict[str, str] | None = None,
        priority: RestPriority = RestPriority.CONTROL,
    ) -> Any:
        """The decoded JSON answer; RestRequestError (retriable) for anything else."""
        return await self.request(
            "GET", path, params, weight=weight, headers=headers, priority=priority
        )

    async def exchange_info(self) -> tuple[ListedSymbol, ...]:
        """The market's listed symbols and their states, paced like every other call.

        Raises:
            RestRequestError: Binance could not be asked (retriable).
            ProtocolError: it answered something that is not an exchangeInfo body.
        """
        call = exchange_info_call(self.market)
        return parse_exchange_info(self.market, await self.get(call.path, weight=call.weight))
