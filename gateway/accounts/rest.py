"""Signed and API-key REST calls of one account: listen keys and reconciliation reads.

The public client (:mod:`gateway.adapters.binance_rest`) only GETs market data; account calls
also need the ``X-MBX-APIKEY`` header, other methods (listen keys are POST/PUT/DELETE) and
signed query strings (:mod:`gateway.binance.signing`). Weight pacing is the same
:class:`~gateway.binance.policy.RestWeightBudget`; pass the market's shared one where the process
has it, since Binance counts weight per IP.

Nothing here logs a URL with its query, a header, or a body: the query carries the signature
and the header the API key. Binance's error answers (``{"code", "msg"}``) become
:class:`AccountRequestError` with the code, so callers can tell ``-1125`` or ``-2015`` apart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar

import aiohttp
import orjson
from pydantic import SecretStr
from yarl import URL

from gateway.adapters.binance_rest import USED_WEIGHT_HEADER, WEIGHT_LIMITS
from gateway.adapters.http_session import HttpSessionClient
from gateway.binance.markets import Market
from gateway.binance.policy import RestWeightBudget
from gateway.binance.signing import Signer, query_string, signed_query
from gateway.binance.user_stream import AUTH_ERROR_CODES
from gateway.errors import RestRequestError

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-MBX-APIKEY"


class AccountRequestError(RestRequestError):
    """Binance refused an account request; ``code`` is its error code (``-1125``, ``-2015``…)."""

    def __init__(self, message: str, *, status: int | None, code: int | None) -> None:
        super().__init__(message, status=status)
        self.code = code

    @property
    def auth_failure(self) -> bool:
        """A wrong key, signature or permission: retrying soon will not help."""
        return self.code in AUTH_ERROR_CODES or self.status in (401, 403)


class AccountAuthError(AccountRequestError):
    """The account's credentials were refused (kept retriable: the shell slows down instead)."""

    retriable: ClassVar[bool] = True


class SignedRestClient(HttpSessionClient):
    """One account's REST calls, within the market's weight budget, one at a time."""

    def __init__(
        self,
        base_url: str,
        market: Market,
        api_key: SecretStr,
        signer: Signer,
        *,
        recv_window_ms: int | None = None,
        timeout_s: float = 10.0,
        budget: RestWeightBudget | None = None,
    ) -> None:
        super().__init__(timeout_s)
        self.base_url = base_url.rstrip("/")
        self.market = market
        self._api_key = api_key
        self._signer = signer
        self._recv_window_ms = recv_window_ms
        self.budget = budget or RestWeightBudget(WEIGHT_LIMITS[market])
        self._lock = asyncio.Lock()

    async def request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        *,
        weight: int,
        signed: bool = False,
    ) -> Any:
        """The decoded JSON answer; AccountRequestError for a refusal, RestRequestError else."""
        async with self._lock:
            while (wait := self.budget.delay(weight, time.time())) > 0:
                logger.info("REST weight budget: waiting %.1fs before %s", wait, path)
                await asyncio.sleep(wait)
            self.budget.spend(weight, time.time())
            if signed:
                query = signed_query(
                    self._signer,
                    params or {},
                    timestamp_ms=int(time.time() * 1_000),
                    recv_window_ms=self._recv_window_ms,
                )
            else:
                query = query_string(params or {})
            return await self._send(method, path, query)

    async def _send(self, method: str, path: str, query: str) -> Any:
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        headers = {API_KEY_HEADER: self._api_key.get_secret_value()}
        where = f"{method} {path}"  # never the query: it holds the signature
        try:
            # ``URL(..., encoded=True)``: send the signed query byte for byte as signed.
            target = URL(url, encoded=True)
            async with self.session.request(method, target, headers=headers) as response:
                body = await response.read()
                self._observe(response)
                if response.status == 200:
                    return orjson.loads(body)
                raise _refusal(where, response.status, body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise RestRequestError(f"{where} unreachable ({reason})") from exc
        except orjson.JSONDecodeError as exc:
            raise RestRequestError(f"{where} answered something that is not JSON") from exc

    def _observe(self, response: aiohttp.ClientResponse) -> None:
        used = response.headers.get(USED_WEIGHT_HEADER)
        retry_after = response.headers.get("Retry-After")
        self.budget.observe(
            response.status,
            int(used) if used and used.isdigit() else None,
            float(retry_after) if retry_after and retry_after.isdigit() else None,
            time.time(),
        )


def _refusal(where: str, status: int, body: bytes) -> AccountRequestError:
    code: int | None = None
    msg = body[:200].decode(errors="replace")
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("code"), int):
        code, msg = answer["code"], str(answer.get("msg", ""))
    error_class = (
        AccountAuthError
        if code in AUTH_ERROR_CODES or status in (401, 403)
        else AccountRequestError
    )
    return error_class(f"{where} refused: HTTP {status}, {code}: {msg}", status=status, code=code)
