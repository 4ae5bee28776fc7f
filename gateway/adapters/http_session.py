"""One aiohttp session per client, opened and closed with ``async with``: the HTTP clients' base."""

from __future__ import annotations

import ssl
from types import TracebackType
from typing import Self

import aiohttp

from gateway.errors import InvalidStateError


class HttpSessionClient:
    """Owns an :class:`aiohttp.ClientSession` for the lifetime of an ``async with`` block."""

    def __init__(
        self,
        timeout_s: float,
        headers: dict[str, str] | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._headers = headers
        self._ssl_context = ssl_context
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        connector = (
            None if self._ssl_context is None else aiohttp.TCPConnector(ssl=self._ssl_context)
        )
        self._session = aiohttp.ClientSession(
            timeout=self._timeout, headers=self._headers, connector=connector
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise InvalidStateError(f"{type(self).__name__} used outside 'async with'")
        return self._session
