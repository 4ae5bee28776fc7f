"""What the spot and futures account sessions share: opening a socket quietly, planned
reconnects, and running two loops of one connection until the first ends.

Quietly, because an account socket carries credentials: a spot subscribe request holds the API
key and a futures URL holds the listen key. websockets logs every frame and the request line at
DEBUG, so account sockets log through :data:`wire_logger`, which drops DEBUG records: a gateway run
at DEBUG must not print an API key (a test greps a DEBUG run for the secrets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from gateway.adapters.binance_ws import map_websocket_errors
from gateway.errors import StreamDisconnectedError
from gateway.settings import BinanceSettings

wire_logger = logging.getLogger("gateway.accounts.wire")
wire_logger.addFilter(lambda record: record.levelno > logging.DEBUG)


class ReconnectNow(Exception):
    """A planned reconnect (rotation, listen key replaced): not a failure, no error logged."""

    def __init__(self, reason: str, why: str) -> None:
        super().__init__(why)
        self.reason = reason  # the snapshot reason of the next connection


@contextlib.asynccontextmanager
async def open_socket(
    url: str, shown_url: str, binance: BinanceSettings
) -> AsyncIterator[ClientConnection]:
    """Connect to ``url``; errors and logs name ``shown_url`` (the URL without its secrets)."""
    with map_websocket_errors(shown_url):
        async with connect(
            url,
            open_timeout=binance.open_timeout_s,
            ping_interval=binance.ping_interval_s,
            ping_timeout=binance.ping_timeout_s,
            max_size=binance.max_frame_bytes,
            logger=wire_logger,
        ) as ws:
            yield ws


async def first_of(*loops: Awaitable[Any]) -> None:
    """Run ``loops`` together until one ends; re-raise its error, cancel the others.

    A loop that returns normally means its connection closed: that is a disconnect too.
    """
    tasks = [asyncio.ensure_future(loop) for loop in loops]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
        raise StreamDisconnectedError("the account connection closed")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
