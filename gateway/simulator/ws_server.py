"""The WebSocket side of the simulator: one market's stream endpoints on 127.0.0.1.

* ``/ws/<s1>/<s2>`` sends raw payloads; ``/stream?streams=<s1>/<s2>`` wraps them as
  ``{"stream": ..., "data": ...}``; both take ``timeUnit`` (docs/binance.md §1.1).
* USDⓈ-M: ``/public``, ``/market`` and ``/private`` prefix those paths (docs/binance.md §1.2). A stream on
  the wrong route, or any non-public stream on an unrouted connection, is accepted and listed by
  ``LIST_SUBSCRIPTIONS`` but never delivered: Binance's documented "only receive data from the
  Public endpoint". ``/private/ws?listenKey=<k>&events=A/B`` carries user data; COIN-M still
  uses ``/ws/<listenKey>``.
* Spot: ``/ws-api/v3`` is the WebSocket API's user-data subscription (:mod:`.wsapi`).
* JSON control messages are answered by :mod:`gateway.simulator.control`.
* Keepalive: a ping every ``ping_interval_s`` with a random payload that the pong must echo, and
  the connection dropped when no pong came within ``ping_timeout_s`` (docs/binance.md §2). Not
  websockets' own keepalive: it waits for the send buffer to drain before its timer starts, so
  a client that stops reading would never meet the deadline.
* A client that does not read: the market does not wait; its frames queue in the connection's
  send buffer and past ``send_buffer_bytes`` the connection is cut (:mod:`.hub`); if pings go
  unanswered first, the ping deadline closes it.
* More than ``max_connection_attempts`` handshakes per IP in the window: HTTP 429.

Choices where the docs are silent: a URL naming an unknown stream, or more than 1024 streams, is
accepted and then closed with 1008 (policy violation) and the reason; a path that is no stream
endpoint gets HTTP 404, an over-long URL HTTP 414; too many messages in a second closes with
1008 "Too many requests" (the reason third-party clients report); the lifetime cut closes with
1001 (going away).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from http import HTTPStatus

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from gateway.simulator import control
from gateway.simulator.config import SimulatorConfig
from gateway.simulator.hub import Hub, Subscriber
from gateway.simulator.limits import ConnectionAttemptLimiter, MessageRateLimiter
from gateway.simulator.markets import Market, Route, profile
from gateway.simulator.payloads import encode
from gateway.simulator.streams import (
    WS_API_PATH,
    ConnectionRequest,
    StreamCatalog,
    StreamRequestError,
    UnknownPathError,
    parse_connection_target,
    parse_stream_name,
    route_of,
)
from gateway.simulator.userdata import ListenKeys
from gateway.simulator.wsapi import WsApiSession

logger = logging.getLogger(__name__)

_MAX_LOGGED_TARGET = 120


class StreamServer:
    """Serves one market's stream endpoints from a :class:`Hub`."""

    def __init__(
        self,
        config: SimulatorConfig,
        catalog: StreamCatalog,
        hub: Hub,
        listen_keys: ListenKeys,
        *,
        now_ms: Callable[[], int],
    ) -> None:
        self._config = config
        self._catalog = catalog
        self._hub = hub
        self._listen_keys = listen_keys
        self._now_ms = now_ms
        self._routed = profile(config.market).routed
        self._server: Server | None = None
        limit = config.max_connection_attempts
        self._attempts = (
            ConnectionAttemptLimiter(limit, config.connection_attempt_window_s) if limit else None
        )
        self.wsapi_sessions: dict[ServerConnection, WsApiSession] = {}

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
            ping_interval=None,  # see _keep_alive
            ping_timeout=None,
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
        client = connection.remote_address[0] if connection.remote_address else ""
        if self._attempts is not None and not self._attempts.allow(client, time.monotonic()):
            return connection.respond(
                HTTPStatus.TOO_MANY_REQUESTS, "Too many connection attempts\n"
            )
        if len(request.path.encode()) > self._config.max_request_target_bytes:
            return connection.respond(HTTPStatus.REQUEST_URI_TOO_LONG, "URI Too Long\n")
        if self._is_wsapi(request.path):
            return None
        try:
            parse_connection_target(request.path, routed=self._routed)
        except UnknownPathError as error:
            return connection.respond(HTTPStatus.NOT_FOUND, error.reason + "\n")
        except StreamRequestError:
            pass  # accepted, then closed with the reason by _handle
        return None

    def _is_wsapi(self, target: str) -> bool:
        path = target.split("?", 1)[0].rstrip("/")
        return self._config.market is Market.SPOT and path == WS_API_PATH

    async def _handle(self, connection: ServerConnection) -> None:
        interval = self._config.ping_interval_s
        if interval is None:
            await self._serve(connection)
            return
        keepalive = asyncio.create_task(self._keep_alive(connection, interval))
        try:
            await self._serve(connection)
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive

    async def _keep_alive(self, connection: ServerConnection, interval_s: float) -> None:
        """Ping every ``interval_s``; drop a client whose pong is not back within the deadline,
        counted from the ping, whether or not the client reads what it is sent."""
        timeout_s = self._config.ping_timeout_s
        while True:
            await asyncio.sleep(interval_s)
            try:
                async with asyncio.timeout(timeout_s):
                    # ping() itself waits while the send buffer is full: inside the deadline.
                    pong = await connection.ping()
                    await pong
            except TimeoutError:
                logger.info("closing a client that answered no ping within %.1fs", timeout_s)
                # 1011 as websockets' own keepalive sends it; a client that does not read will
                # not see it in time, and is dropped after close_timeout_s.
                with contextlib.suppress(TimeoutError, ConnectionClosed):
                    async with asyncio.timeout(self._config.close_timeout_s):
                        await connection.close(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
                connection.transport.abort()
                return
            except ConnectionClosed:
                return

    async def _serve(self, connection: ServerConnection) -> None:
        assert connection.request is not None  # the handshake is over
        target = connection.request.path
        if self._is_wsapi(target):
            await self._serve_wsapi(connection)
            return
        try:
            request = parse_connection_target(target, routed=self._routed)
            self._check_streams(request)
        except StreamRequestError as error:
            logger.info("refusing stream connection: %s", error.reason)
            await connection.close(CloseCode.POLICY_VIOLATION, error.reason)
            return
        subscriber = Subscriber(
            connection,
            self._hub.next_connection_id(),
            combined=request.combined,
            time_unit=request.time_unit,
            route=request.route,
            events=frozenset(request.events),
            send_buffer_bytes=self._config.send_buffer_bytes,
        )
        self._hub.add(subscriber, ())
        self._hub.subscribe(
            subscriber, request.streams, silent=self._silent(subscriber, request.streams)
        )
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

    def _check_streams(self, request: ConnectionRequest) -> None:
        if request.route is Route.PRIVATE:
            now_s = self._now_ms() / 1_000
            if not request.streams:
                raise StreamRequestError("Missing listenKey")
            for key in request.streams:
                if not self._listen_keys.is_active(key, now_s):
                    raise StreamRequestError("Invalid listenKey")
            return
        names = [n for n in request.streams if not self._is_listen_key(n)]
        self._catalog.check(names, allow_unknown=not self._config.reject_unknown_streams)
        if len(request.streams) > len(names):
            self._catalog.check(request.streams, allow_unknown=True)  # the stream cap still holds

    def _is_listen_key(self, name: str) -> bool:
        return self._config.market.is_futures and self._listen_keys.is_active(
            name, self._now_ms() / 1_000
        )

    def _silent(self, subscriber: Subscriber, names: tuple[str, ...] | list[str]) -> list[str]:
        """The names this connection accepts but, by its route, never receives."""
        if not self._routed or subscriber.route is Route.PRIVATE:
            return []
        wanted = Route.PUBLIC if subscriber.route is Route.NONE else subscriber.route
        silent = []
        for name in names:
            key = self._catalog.key(name)
            if key is None or route_of(key) is not wanted:
                silent.append(name)  # a listen key on an unrouted USDⓈ-M connection too
        return silent

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
            unsigned_ids=self._config.market.is_futures,
        )
        outcome = control.answer(text, view)
        if outcome.close_reason is not None:
            await subscriber.connection.close(CloseCode.POLICY_VIOLATION, outcome.close_reason)
            return False
        self._hub.unsubscribe(subscriber, outcome.unsubscribe)
        silent = self._silent(subscriber, list(outcome.subscribe))
        self._hub.subscribe(subscriber, outcome.subscribe, silent=silent)
        if outcome.combined is not None:
            subscriber.combined = outcome.combined
        if outcome.reply is not None:
            await subscriber.connection.send(encode(outcome.reply), text=True)
        return True

    def _accepts_stream(self, name: str) -> bool:
        if self._is_listen_key(name):
            return True
        if self._config.reject_unknown_streams:
            return self._catalog.is_known(name)
        return parse_stream_name(name) is not None

    async def _serve_wsapi(self, connection: ServerConnection) -> None:
        session = WsApiSession(self._config.api_keys)
        self.wsapi_sessions[connection] = session
        try:
            async with asyncio.timeout(self._config.connection_lifetime_s):
                async for message in connection:
                    text = (
                        message if isinstance(message, str) else message.decode("utf-8", "replace")
                    )
                    before = set(session.subscriptions)
                    reply = session.handle(text, self._now_ms())
                    await connection.send(encode(reply), text=True)
                    for ended in sorted(before - set(session.subscriptions)):
                        terminated = {"e": "eventStreamTerminated", "E": self._now_ms()}
                        frame = {"subscriptionId": ended, "event": terminated}
                        await connection.send(encode(frame), text=True)
        except TimeoutError:
            await connection.close(CloseCode.GOING_AWAY, "Connection lifetime reached")
        except ConnectionClosed:
            pass
        finally:
            self.wsapi_sessions.pop(connection, None)

    async def drop_wsapi_connections(self) -> int:
        """Close every WebSocket API connection abruptly (1011), as a failing server would."""
        connections = list(self.wsapi_sessions)
        for connection in connections:
            await connection.close(CloseCode.INTERNAL_ERROR, "simulated failure")
        return len(connections)

    async def terminate_user_streams(self, api_key: str) -> int:
        """End every subscription of ``api_key`` with ``eventStreamTerminated`` (as on logout)."""
        ended = 0
        for connection, session in list(self.wsapi_sessions.items()):
            for subscription_id in session.subscriptions_of(api_key):
                del session.subscriptions[subscription_id]
                terminated = {"e": "eventStreamTerminated", "E": self._now_ms()}
                frame = {"subscriptionId": subscription_id, "event": terminated}
                with contextlib.suppress(ConnectionClosed):
                    await connection.send(encode(frame), text=True)
                ended += 1
        return ended

    async def send_user_event(self, api_key: str, event: object) -> int:
        """Push a spot user event to every WebSocket API subscription of ``api_key``."""
        sent = 0
        for connection, session in list(self.wsapi_sessions.items()):
            for subscription_id in session.subscriptions_of(api_key):
                frame = {"subscriptionId": subscription_id, "event": event}
                try:
                    await connection.send(encode(frame), text=True)
                except ConnectionClosed:
                    break
                sent += 1
        return sent
