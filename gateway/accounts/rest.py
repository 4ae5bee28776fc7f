"""Signed and API-key REST calls of one account: listen keys and reconciliation reads.

They go through the same transport as market data (:mod:`gateway.adapters.binance_http`):
the same weight pacing, ``Retry-After`` and 418/429 back-off; pass the market's shared
:class:`~gateway.binance.policy.RestWeightBudget` where the process has it, since Binance counts
weight per IP. This module adds the account's key and signer, and reads Binance's error answers
(``{"code", "msg"}``) into :class:`AccountRequestError` with the code, so callers can tell
``-1125`` or ``-2015`` apart. Nothing here logs a query, a header, or a body.
"""

from __future__ import annotations

from typing import ClassVar

import orjson
from pydantic import SecretStr

from gateway.adapters.binance_http import BinanceHttpTransport
from gateway.binance.markets import Market
from gateway.binance.policy import RestWeightBudget
from gateway.binance.signing import Signer
from gateway.binance.user_stream import AUTH_ERROR_CODES
from gateway.errors import RestRequestError


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


class SignedRestClient(BinanceHttpTransport):
    """One account's REST calls on the shared transport: its API key, its signer."""

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
        super().__init__(
            base_url,
            market,
            timeout_s=timeout_s,
            budget=budget,
            api_key=api_key,
            signer=signer,
            recv_window_ms=recv_window_ms,
        )

    def refusal(self, where: str, status: int, body: bytes) -> AccountRequestError:
        return _refusal(where, status, body)


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
