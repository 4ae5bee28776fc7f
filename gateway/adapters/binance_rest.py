"""Binance REST: for now the reachability probe run before streaming starts.

Issue "Connections that never lose data" grows this into snapshots, backfill and weight accounting.
"""

from __future__ import annotations

import aiohttp

from gateway.binance.markets import PING_PATHS, Market
from gateway.errors import RestRequestError


async def ping(rest_url: str, market: Market, timeout_s: float) -> None:
    """GET the market's ping endpoint; RestRequestError says why it could not be reached."""
    url = rest_url.rstrip("/") + PING_PATHS[market]
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.get(url) as response,
        ):
            if response.status != 200:
                raise RestRequestError(
                    f"{url} answered HTTP {response.status}", status=response.status
                )
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        raise RestRequestError(f"{url} unreachable ({reason})") from exc
