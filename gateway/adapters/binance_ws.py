"""One Binance WebSocket connection: connect, read frames, hand them on, reconnect.

The protocol work (parsing, sequencing) happens in the frame handler, which is pure code behind a
thin async shell; this module only moves frames and decides, through ``gateway.binance.policy``,
whether a failure is worth a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

from gateway.binance.policy import backoff, is_retriable
from gateway.errors import ConfigError, StreamDisconnectedError, UpstreamError
from gateway.settings import BinanceSettings

logger = logging.getLogger(__name__)

FrameHandler = Callable[[bytes, int, int], Awaitable[None]]
"""``handler(frame, received_at_us, received_monotonic_ns)``."""


@contextlib.contextmanager
def map_websocket_errors(url: str) -> Iterator[None]:
    """Translate websockets' errors: 5xx/429 and lost sockets retry, other refusals are fatal."""
    try:
        yield
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status >= 500 or status == 429:
            raise UpstreamError(f"{url} answered HTTP {status}") from exc
        raise ConfigError(f"{url} refused the connection with HTTP {status}") from exc
    except InvalidURI as exc:
        raise ConfigError(f"invalid stream URL {url}: {exc}") from exc
    except ConnectionClosed as exc:
        raise StreamDisconnectedError(f"{url} closed: {exc}") from exc
    except WebSocketException as exc:
        raise StreamDisconnectedError(f"{url}: {type(exc).__name__}: {exc}") from exc


class BinanceStreamClient:
    """Keeps one combined-stream connection open and feeds every frame to ``handler``."""

    def __init__(
        self,
        url: str,
        handler: FrameHandler,
        settings: BinanceSettings,
        *,
        name: str,
        on_reconnect: Callable[[], None] | None = None,
    ) -> None:
        self.url = url
        self.name = name
        self._handler = handler
        self._settings = settings
        self.connected = asyncio.Event()
        self.reconnects = 0
        self._on_reconnect = on_reconnect
        self.frames = 0

    async def run(self) -> None:
        """Read until cancelled; reconnect with capped jittered backoff on retriable failures."""
        delays = backoff()
        while True:
            try:
                with map_websocket_errors(self.url):
                    async with self._connect() as ws:
                        logger.info("connected %s", self.name, extra=self._log_fields())
                        self.connected.set()
                        delays = backoff()  # a connection that opened resets the backoff
                        await self._read(ws)
            except (OSError, TimeoutError, UpstreamError) as exc:
                if not is_retriable(exc):
                    raise
                self.connected.clear()
                self.reconnects += 1
                if self._on_reconnect is not None:
                    self._on_reconnect()
                delay = next(delays)
                logger.warning(
                    "connection %s lost (%s); reconnecting in %.2fs",
                    self.name,
                    exc,
                    delay,
                    extra=self._log_fields(),
                )
                await asyncio.sleep(delay)

    def _connect(self) -> connect:
        s = self._settings
        return websockets.connect(
            self.url,
            open_timeout=s.open_timeout_s,
            ping_interval=s.ping_interval_s,
            ping_timeout=s.ping_timeout_s,
            max_size=s.max_frame_bytes,
            compression=None,
            proxy=None,
        )

    async def _read(self, ws: ClientConnection) -> None:
        handler = self._handler
        while True:
            # decode=False: orjson parses bytes directly, and the dead-letter topic keeps them as sent.
            frame = await ws.recv(decode=False)
            self.frames += 1
            await handler(frame, time.time_ns() // 1000, time.monotonic_ns())

    def _log_fields(self) -> dict[str, object]:
        return {"event_data": {"connection": self.name, "url": self.url}}
