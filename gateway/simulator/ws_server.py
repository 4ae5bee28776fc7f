"""The WebSocket side of the simulator: Binance's stream endpoints on 127.0.0.1.

* ``/ws/<s1>/<s2>`` sends raw payloads; ``/stream?streams=<s1>/<s2>`` wraps them as
  ``{"stream": ..., "data": ...}``; both take ``timeUnit`` (FACTS §1.1).
* JSON control messages are answered by :mod:`gateway.simulator.control`.
* Keepalive is websockets' own: a ping every ``ping_interval_s`` with a random payload that the
  pong must echo, and a close (1011) when no pong came within ``ping_timeout_s`` (FACTS §2).

Choices where the docs are silent (see the module docstrings of ``control`` and ``config``):
a URL naming an unknown stream, or more than 1024 streams, is accepted and then closed with
1008 (policy violation) and the reason; a path that is no stream endpoint gets HTTP 404, an
over-long URL HTTP 414; more than 5 messages in a second closes with 1008 "Too many requests"
(the reason third-party clients report); the lifetime cut closes with 1001 (going away).
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from gateway.simulator import control
from gateway.simulator.config import SimulatorConfig
from gateway.simulator.hub import Hub, Subscriber
from gateway.simulator.limits import MessageRateLimiter
from gateway.simulator.payloads import encode
from gateway.simulator.streams import (
    StreamCatalog,
    StreamRequestError,
    UnknownPathError,
    parse_connection_target,
    parse_stream_name,
)

logger = logging.getLogger(__name__)

_MAX_LOGGED_TARGET = 120


class StreamServer:
    """Serves Binance's market-stream endpoints from a :class:`Hub`."""

    def __init__(self, config: SimulatorConfig, catalog: StreamCatalog, hub: Hub) -> None:
        self._config = config
        self._catalog = catalog
        self._hub = hub
        self._server: Server | None = None

    @property
    def url(self) -> str:
        """``ws://host:port`` of the running server.

        Raises:
            RuntimeError: the server is not started.
        """
        if self._server is None:
            raise RuntimeError("stream server not started")
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://{self._config.host}:{port}"

    async def start(self) -> None:
        """Listen on the configured host and port."""
        config = self._config
        self._server = await serve(
            self._handle,
            config.host,
            config.ws_port,
            process_request=self._check_request,
            ping_interval=config.ping_interval_s,
            ping_timeout=config.ping_timeout_s,
            close_timeout=config.close_timeout_s,
            max_size=config.max_message_bytes,
            # Frames are small JSON; compression would cost CPU on both sides for little gain.
            compression=None,
        )
        logger.info("stream server listening on %s", self.url)

    async def stop(self) -> None:
        """Close every connection (1001) and stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse at the HTTP level what cannot become a stream connection."""
        if len(request.path.encode()) > self._config.max_request_target_bytes:
            return connection.respond(HTTPStatus.REQUEST_URI_TOO_LONG, "URI Too Long\n")
        try:
            parse_connection_target(request.path)
        except UnknownPathError as error:
            return connection.respond(HTTPStatus.NOT_FOUND, error.reason + "\n")
        except StreamRequestError:
            pass  # accepted, then closed with the reason by _handle
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None  # the handshake is over
        target = connection.request.path
        try:
            request = parse_connection_target(target)
            self._catalog.check(
                request.streams, allow_unknown=not self._config.reject_unknown_streams
            )
        except StreamRequestError as error:
            logger.info("refusing stream connection: %s", error.reason)
            await connection.close(CloseCode.POLICY_VIOLATION, error.reason)
            return
        subscriber = Subscriber(
            connection,
            self._hub.next_connection_id(),
            combined=request.combined,
            time_unit=request.time_unit,
        )
        self._hub.add(subscriber, request.streams)
        logger.info(
            "stream connection %d opened: %s (%d streams)",
            subscriber.connection_id,
            target[:_MAX_LOGGED_TARGET],
            len(request.streams),
        )
        try:
            async with asyncio.timeout(self._config.connection_lifetime_s):
                await self._serve_messages(subscriber)
        except TimeoutError:
            await connection.close(CloseCode.GOING_AWAY, "Connection lifetime reached")
        except ConnectionClosed:
            pass
        finally:
            self._hub.remove(subscriber)
            logger.info(
                "stream connection %d closed after %d frames",
                subscriber.connection_id,
                subscriber.frames_sent,
            )

    async def _serve_messages(self, subscriber: Subscriber) -> None:
        connection = subscriber.connection
        limit = self._config.max_incoming_messages_per_s
        limiter = MessageRateLimiter(limit) if limit else None
        loop = asyncio.get_running_loop()
        async for message in connection:
            if limiter is not None and not limiter.allow(loop.time()):
                await connection.close(CloseCode.POLICY_VIOLATION, "Too many requests")
                return
            text = message if isinstance(message, str) else message.decode("utf-8", "replace")
            if not await self._apply_control(subscriber, text):
                return

    async def _apply_control(self, subscriber: Subscriber, text: str) -> bool:
        """Answer one control message; ``False`` when the connection had to be closed."""
        view = control.ConnectionView(
            subscriptions=subscriber.streams.keys(),
            combined=subscriber.combined,
            accepts_stream=self._accepts_stream,
            wrap_errors=self._config.wrap_control_errors,
        )
        outcome = control.answer(text, view)
        if outcome.close_reason is not None:
            await subscriber.connection.close(CloseCode.POLICY_VIOLATION, outcome.close_reason)
            return False
        self._hub.unsubscribe(subscriber, outcome.unsubscribe)
        self._hub.subscribe(subscriber, outcome.subscribe)
        if outcome.combined is not None:
            subscriber.combined = outcome.combined
        if outcome.reply is not None:
            await subscriber.connection.send(encode(outcome.reply), text=True)
        return True

    def _accepts_stream(self, name: str) -> bool:
        if self._config.reject_unknown_streams:
            return self._catalog.is_known(name)
        return parse_stream_name(name) is not None
