"""The one Binance HTTP transport: weights, ``Retry-After``, 418/429, an optional key and signer.

Market data (:mod:`gateway.adapters.binance_rest`) and account calls
(:mod:`gateway.accounts.rest`) both go through :class:`BinanceHttpTransport`, so a 429 or a ban
(418) is read the same way on both edges and both stop sending until ``Retry-After`` has passed.
Pacing is decided by the pure :class:`~gateway.binance.policy.RestWeightBudget`; this module
only waits as it says, sends, and tells it what Binance answered (docs/binance.md §7).

A request that carries a secret (an API key or a signature) is never logged with its query, its
headers or the third-party exception text, which may quote the URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any

import aiohttp
import orjson
from pydantic import SecretStr
from yarl import URL

from gateway.adapters.http_session import HttpSessionClient
from gateway.binance.markets import Market
from gateway.binance.policy import RestPriority, RestTurns, RestWeightBudget
from gateway.binance.signing import Signer, query_string, signed_query
from gateway.errors import ConfigError, RestRequestError

logger = logging.getLogger(__name__)

USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
API_KEY_HEADER = "X-MBX-APIKEY"
# REQUEST_WEIGHT per minute per IP (docs/binance.md §7): spot 6000; USD-M and COIN-M share 2400.
WEIGHT_LIMITS = {Market.SPOT: 6000, Market.USDM: 2400, Market.COINM: 2400}
# The largest answer read: spot's whole exchangeInfo is some 20 MB; beyond this is not Binance.
MAX_BODY_BYTES = 64 * 1024 * 1024


class BinanceHttpTransport(HttpSessionClient):
    """Sends requests to one market's REST API within its weight budget, one at a time.

    Binance counts weight per IP, so every caller of a market in a process should share one
    budget (pass it in) or one transport.
    """

    def __init__(
        self,
        base_url: str,
        market: Market,
        *,
        timeout_s: float = 10.0,
        budget: RestWeightBudget | None = None,
        api_key: SecretStr | None = None,
        signer: Signer | None = None,
        recv_window_ms: int | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        super().__init__(timeout_s)
        self.max_body_bytes = max_body_bytes
        self.base_url = base_url.rstrip("/")
        self.market = market
        self.budget = budget or RestWeightBudget(WEIGHT_LIMITS[market])
        self._api_key = api_key
        self._signer = signer
        self._recv_window_ms = recv_window_ms
        # One request in flight per market, and the next to go is the highest priority waiting.
        self._turn = asyncio.Condition()
        self._turns = RestTurns()
        self._busy = False

    async def request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        *,
        weight: int,
        signed: bool = False,
        headers: dict[str, str] | None = None,
        priority: RestPriority = RestPriority.CONTROL,
    ) -> Any:
        """The decoded JSON answer; :meth:`refusal`'s error for an answer other than 200.
        ``priority``: who goes first when weight is short (:class:`RestPriority`).

        Raises:
            RestRequestError: Binance could not be reached, refused, or answered no JSON
                (retriable).
        """
        # One request in flight per market: an answer (429, 418, the used weight) must be seen
        # before the next request goes out, or a burst already on the wire earns a ban. Waiting
        # requests go by priority, so exchangeInfo never queues behind a fail-over's backfill.
        await self._take_turn(weight, priority, path)
        try:
            self.budget.spend(weight, time.time())
            return await self._send(method, path, self._query(params or {}, signed), headers)
        finally:
            async with self._turn:
                self._busy = False
                self._turn.notify_all()

    async def _take_turn(self, weight: int, priority: RestPriority, path: str) -> None:
        """Wait until nothing is in flight, no higher priority waits and the budget allows."""
        async with self._turn:
            ticket = self._turns.join(priority)
            try:
                while True:
                    wait: float | None = None
                    if not self._busy and self._turns.first() == ticket:
                        wait = self.budget.delay(weight, time.time(), priority)
                        if wait <= 0:
                            break
                        logger.info("REST weight budget: waiting %.1fs before %s", wait, path)
                    # Woken when a request ends or a waiter leaves; the budget's wait is a timer.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await self._turn.wait()
                self._busy = True
            finally:
                self._turns.leave(ticket)
                self._turn.notify_all()

    def refusal(self, where: str, status: int, body: bytes) -> RestRequestError:
        """The error for an answer other than 200; account clients read Binance's error code."""
        return RestRequestError(
            f"{where} answered HTTP {status}: {body[:200].decode(errors='replace')}", status=status
        )

    def _query(self, params: dict[str, str], signed: bool) -> str:
        if not signed:
            return query_string(params)
        if self._signer is None:
            raise ConfigError(f"a signed request to {self.market} needs a signer")
        return signed_query(
            self._signer,
            params,
            timestamp_ms=int(time.time() * 1_000),
            recv_window_ms=self._recv_window_ms,
        )

    async def _send(
        self, method: str, path: str, query: str, headers: dict[str, str] | None
    ) -> Any:
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        where = f"{method} {self.base_url}{path}"  # never the query: it may hold a signature
        secret = self._api_key is not None
        if self._api_key is not None:
            headers = {**(headers or {}), API_KEY_HEADER: self._api_key.get_secret_value()}
        try:
            # ``encoded=True``: send the (signed) query byte for byte as it was built.
            target = URL(url, encoded=True)
            async with self.session.request(method, target, headers=headers) as response:
                body = await self._read(response, where)
                self._observe(response, where)
                if response.status != 200:
                    raise self.refusal(where, response.status, body)
                return orjson.loads(body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            if isinstance(exc, TimeoutError):
                reason = "timed out"
            elif secret:
                reason = type(exc).__name__  # its text may quote the URL
            else:
                reason = f"{type(exc).__name__}: {exc}"
            raise RestRequestError(f"{where} unreachable ({reason})") from exc
        except orjson.JSONDecodeError as exc:
            raise RestRequestError(f"{where} answered something that is not JSON") from exc

    async def _read(self, response: aiohttp.ClientResponse, where: str) -> bytes:
        """The body, or RestRequestError once it passes ``max_body_bytes`` (never all of it)."""
        body = bytearray()
        async for chunk in response.content.iter_chunked(1 << 16):
            body += chunk
            if len(body) > self.max_body_bytes:
                raise RestRequestError(
                    f"{where} answered more than {self.max_body_bytes} bytes",
                    status=response.status,
                )
        return bytes(body)

    def _observe(self, response: aiohttp.ClientResponse, where: str) -> None:
        used = response.headers.get(USED_WEIGHT_HEADER)
        retry_after = _seconds(response.headers.get("Retry-After"))
        if response.status in (418, 429):
            logger.warning(
                "Binance answered %d (%s) to %s; backing off %.1fs",
                response.status,
                "IP banned" if response.status == 418 else "rate limit",
                where,
                60.0 if retry_after is None else retry_after,
            )
        self.budget.observe(
            response.status,
            int(used) if used and used.isdigit() else None,
            retry_after,
            time.time(),
        )


def _seconds(header: str | None) -> float | None:
    """``Retry-After`` in seconds; ``None`` for an absent or unreadable value (60 s then)."""
    if header is None:
        return None
    try:
        seconds = float(header)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
