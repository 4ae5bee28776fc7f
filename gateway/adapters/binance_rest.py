"""Binance REST: a paced client (weights, 429/418 back-off) and the reachability probe.

Pacing is decided by the pure :class:`~gateway.binance.policy.RestWeightBudget`; this module
only waits as it says, sends, and tells it what Binance answered. One client per market and
process: Binance counts weight per IP, so every caller must share it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import orjson

from gateway.adapters.http_session import HttpSessionClient
from gateway.binance.exchange_info import ListedSymbol, parse_exchange_info
from gateway.binance.markets import PING_PATHS, Market
from gateway.binance.policy import RestWeightBudget
from gateway.binance.rest_payloads import exchange_info_call
from gateway.errors import RestRequestError

logger = logging.getLogger(__name__)

USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
# REQUEST_WEIGHT per minute per IP (docs/binance.md §7): spot 6000; USD-M and COIN-M share 2400.
WEIGHT_LIMITS = {Market.SPOT: 6000, Market.USDM: 2400, Market.COINM: 2400}
# The largest answer read: spot's whole exchangeInfo is some 20 MB; beyond this is not Binance.
MAX_BODY_BYTES = 64 * 1024 * 1024


async def ping(rest_url: str, market: Market, timeout_s: float) -> None:
    """GET the market's ping endpoint; RestRequestError says why it could not be reached."""
    async with BinanceRestClient(rest_url, market, timeout_s=timeout_s) as client:
        await client.get(PING_PATHS[market], weight=1)


class BinanceRestClient(HttpSessionClient):
    """GETs JSON from one market's REST API within its weight budget."""

    def __init__(
        self,
        base_url: str,
        market: Market,
        *,
        timeout_s: float = 10.0,
        budget: RestWeightBudget | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        super().__init__(timeout_s)
        self.max_body_bytes = max_body_bytes
        self.base_url = base_url.rstrip("/")
        self.market = market
        self.budget = budget or RestWeightBudget(WEIGHT_LIMITS[market])
        self._lock = asyncio.Lock()

    async def get(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        weight: int,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The decoded JSON answer; RestRequestError (retriable) for anything else."""
        session = self.session
        # One request in flight per market: an answer (429, 418, the used weight) must be seen
        # before the next request goes out, or a burst already on the wire earns a ban.
        async with self._lock:
            while (wait := self.budget.delay(weight, time.time())) > 0:
                logger.info("REST weight budget: waiting %.1fs before %s", wait, path)
                await asyncio.sleep(wait)
            self.budget.spend(weight, time.time())
            return await self._send(session, path, params, headers)

    async def exchange_info(self) -> tuple[ListedSymbol, ...]:
        """The market's listed symbols and their states, paced like every other call.

        Raises:
            RestRequestError: Binance could not be asked (retriable).
            ProtocolError: it answered something that is not an exchangeInfo body.
        """
        call = exchange_info_call(self.market)
        return parse_exchange_info(self.market, await self.get(call.path, weight=call.weight))

    async def _send(
        self,
        session: aiohttp.ClientSession,
        path: str,
        params: dict[str, str] | None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        url = self.base_url + path
        try:
            async with session.get(url, params=params, headers=headers) as response:
                body = await self._read(response, url)
                self._observe(response)
                if response.status != 200:
                    raise RestRequestError(
                        f"{url} answered HTTP {response.status}: {body[:200].decode(errors='replace')}",
                        status=response.status,
                    )
                return orjson.loads(body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = (
                "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            )
            raise RestRequestError(f"{url} unreachable ({reason})") from exc
        except orjson.JSONDecodeError as exc:
            raise RestRequestError(f"{url} answered something that is not JSON") from exc

    async def _read(self, response: aiohttp.ClientResponse, url: str) -> bytes:
        """The body, or RestRequestError once it passes ``max_body_bytes`` (never all of it)."""
        body = bytearray()
        async for chunk in response.content.iter_chunked(1 << 16):
            body += chunk
            if len(body) > self.max_body_bytes:
                raise RestRequestError(
                    f"{url} answered more than {self.max_body_bytes} bytes", status=response.status
                )
        return bytes(body)

    def _observe(self, response: aiohttp.ClientResponse) -> None:
        used = response.headers.get(USED_WEIGHT_HEADER)
        retry_after = response.headers.get("Retry-After")
        if response.status in (418, 429):
            logger.warning(
                "Binance answered %d (%s); backing off %ss",
                response.status,
                "IP banned" if response.status == 418 else "rate limit",
                retry_after or "60",
            )
        self.budget.observe(
            response.status,
            int(used) if used and used.isdigit() else None,
            float(retry_after)
            if retry_after and retry_after.replace(".", "", 1).isdigit()
            else None,
            time.time(),
        )
