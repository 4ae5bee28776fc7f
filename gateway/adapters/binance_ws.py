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
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import cast

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.messages import Assembler
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    InvalidStatus,
    InvalidURI,
    WebSocketException,
)
from websockets.frames import CloseCode, Frame, Opcode

from gateway.binance.handover import Handover, HeldFrame
from gateway.binance.policy import SlidingWindowLimit, backoff, is_retriable
from gateway.errors import ConfigError, ServerShutdownNotice, StreamDisconnectedError, UpstreamError
from gateway.settings import BinanceSettings

logger = logging.getLogger(__name__)

FrameHandler = Callable[[bytes, int, int], Awaitable[None]]
"""``handler(frame, received_at_us, received_monotonic_ns)``."""
SilenceAllowance = Callable[[], float | None]
"""How long the connection may deliver nothing at all before it is dead (``None``: nothing on
it can be judged by silence; pings alone watch it)."""
SILENCE_CHECK_S = 0.5
"""How often a silent connection is judged (its allowance is at least ``stale_after_s``)."""

RefusedHandler = Callable[[bytes, int, str], Awaitable[None]]
"""``refused(frame, received_at_us, reason)``: a frame the connection will not hand on."""

HARD_FRAME_FACTOR = 4
"""websockets reads frames up to this many times ``max_frame_bytes``: those over the limit are
dead-lettered with their first bytes and the stream goes on; only beyond this (memory) does the
connection close, with a dead letter saying so."""


class _KindAssembler(Assembler):
    """websockets' message assembler, also noting whether each message was a binary frame
    (``recv(decode=False)`` returns bytes either way, and Binance sends text only)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.binary: deque[bool] = deque()

    def put(self, frame: Frame) -> None:
        if frame.opcode is Opcode.TEXT or frame.opcode is Opcode.BINARY:
            self.binary.append(frame.opcode is Opcode.BINARY)
        super().put(frame)


class CheckedConnection(ClientConnection):
    """A client connection that can tell binary messages from text ones."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # A cast, as websockets does: uvloop's transports are not asyncio.Transport subclasses.
        transport = cast(asyncio.Transport, transport)
        self.recv_messages = _KindAssembler(
            self.max_queue_high,
            self.max_queue_low,
            pause=transport.pause_reading,
            resume=transport.resume_reading,
        )

    def last_was_binary(self) -> bool:
        """Whether the message ``recv`` just returned came in a binary frame."""
        assembler = self.recv_messages
        return isinstance(assembler, _KindAssembler) and bool(assembler.binary.popleft())


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


RETRY_ROTATION_S = 30.0  # a failed handover is tried again well before the 24-hour cut


class BinanceStreamClient:
    """Keeps one combined-stream connection open and feeds every frame to ``handler``.

    Before Binance's 24-hour cut (``rotate_after_s``), or when Binance announces a shutdown, the
    connection is replaced make-before-break (:mod:`gateway.binance.handover`): the successor is
    opened first and the two overlap, so no event is lost in the switch and none is published
    twice. Anything else that ends the connection is a reconnect with capped, jittered backoff.
    """

    def __init__(
        self,
        url: str,
        handler: FrameHandler,
        settings: BinanceSettings,
        *,
        name: str,
        on_reconnect: Callable[[], None] | None = None,
        attempts: SlidingWindowLimit | None = None,
        on_refused: RefusedHandler | None = None,
        silence_allowance: SilenceAllowance | None = None,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        self.url = url
        self._on_refused = on_refused
        # Shared by every connection of the process: Binance counts attempts per IP.
        self._attempts = attempts or SlidingWindowLimit(300, 300.0)
        self.name = name
        self._handler = handler
        self._settings = settings
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.rotations = 0
        self.handover_duplicates = 0
        self._on_reconnect = on_reconnect
        # Without a liveness monitor: one fixed timer per connection (stale_after_s).
        self._allowance = silence_allowance or (lambda: settings.stale_after_s)
        self._on_connected = on_connected
        self.frames = 0
        self._handover: Handover | None = None
        self._old: ClientConnection | None = None  # the connection being replaced
        self._lock = asyncio.Lock()  # while two connections feed the handler: one at a time
        self._rotate_now = asyncio.Event()
        self._next_rotation_s = settings.rotate_after_s
        self._closing: set[asyncio.Task[None]] = set()  # old connections finishing their close

    async def run(self) -> None:
        """Read until cancelled; reconnect with capped jittered backoff on retriable failures."""
        delays = backoff()
        while True:
            try:
                with map_websocket_errors(self.url):
                    ws = await self._connect()
                    logger.info("connected %s", self.name, extra=self._log_fields())
                    if self._on_connected is not None:
                        self._on_connected()
                    self.connected.set()
                    delays = backoff()  # a connection that opened resets the backoff
                    await self._stream(ws)
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

    def retarget(self, url: str) -> None:
        """Stream ``url``'s set of streams from now on (the shard plan changed).

        A live connection is replaced make-before-break like a rotation, so the streams both
        URLs share lose nothing and repeat nothing; a connection not open yet uses it next.
        """
        if url == self.url:
            return
        self.url = url
        if self.connected.is_set():
            self._rotate_now.set()

    async def _connect(self) -> ClientConnection:
        while (wait := self._attempts.delay(time.monotonic())) > 0:
            logger.warning("%s: connection attempt budget spent; waiting %.1fs", self.name, wait)
            await asyncio.sleep(wait)
        self._attempts.record(time.monotonic())
        s = self._settings
        return await websockets.connect(
            self.url,
            open_timeout=s.open_timeout_s,
            ping_interval=s.ping_interval_s,
            ping_timeout=s.ping_timeout_s,
            max_size=s.max_frame_bytes * HARD_FRAME_FACTOR,
            create_connection=CheckedConnection,
            # A peer too busy to answer our close (its buffers full of frames we no longer read)
            # must not hold up a shutdown or a rotation for websockets' default 10 s.
            close_timeout=2.0,
            compression=None,
            proxy=None,
        )

    async def _stream(self, ws: ClientConnection) -> None:
        """Serve ``ws``, handing over to successors when due; returns only by raising."""
        current = ws
        reader = asyncio.create_task(self._read(current), name=f"{self.name}-reader")
        try:
            while True:
                await self._until_rotation_due(reader)
                # The successor's reader keeps running across the switch: no pause in reading.
                current, reader = await self._hand_over(current, reader)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketException):
                await reader
            await current.close()

    async def _until_rotation_due(self, reader: asyncio.Task[None]) -> None:
        """Wait until it is time to rotate; if the reader ends first, raise why it ended."""
        rotation = asyncio.create_task(self._rotation_due())
        try:
            done, _ = await asyncio.wait({reader, rotation}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            rotation.cancel()
        if reader in done:
            reader.result()  # the connection ended: raises ConnectionClosed and the like
            raise StreamDisconnectedError(f"{self.url}: reader ended")

    async def _rotation_due(self) -> None:
        self._rotate_now.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._next_rotation_s):
                await self._rotate_now.wait()
        self._next_rotation_s = self._settings.rotate_after_s

    async def _hand_over(
        self, old: ClientConnection, reader: asyncio.Task[None]
    ) -> tuple[ClientConnection, asyncio.Task[None]]:
        """Open the successor, overlap, switch; on failure keep the old connection. Returns the
        connection to serve and its running reader."""
        # From before the successor connects, the old connection's frames are recorded: any of
        # them may also arrive on the successor.
        handover = Handover()
        self._old, self._handover = old, handover
        try:
            successor = await self._connect()
        except (OSError, TimeoutError, WebSocketException) as exc:
            async with self._lock:
                self._old = self._handover = None
            logger.warning("%s: successor failed to open (%s); keeping the old one", self.name, exc)
            self._next_rotation_s = RETRY_ROTATION_S
            return old, reader
        successor_reader = asyncio.create_task(self._read(successor), name=f"{self.name}-successor")
        try:
            held = await self._overlap(handover, reader, successor_reader)
        except BaseException:
            # Cancelled (the gateway is stopping) or failing: leave no reader or socket behind.
            successor_reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketException, OSError):
                await successor_reader
            await successor.close()
            self._old = self._handover = None
            raise
        if held is None:
            return await self._abandon_successor(successor, successor_reader, old), reader
        reader.cancel()
        # Closing waits for the peer's closing handshake; never hold up reading for it.
        closing = asyncio.create_task(old.close(), name=f"{self.name}-close-old")
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        self.rotations += 1
        self.handover_duplicates += handover.duplicates
        logger.info(
            "%s: rotated to a new connection (%d frames seen on both, published once)",
            self.name,
            handover.duplicates,
            extra=self._log_fields(),
        )
        # Late copies of what the old connection published still arrive on the successor for
        # a moment; the handover keeps filtering them until the next rotation.
        self._old = None
        return successor, successor_reader

    async def _overlap(
        self, handover: Handover, reader: asyncio.Task[None], successor_reader: asyncio.Task[None]
    ) -> list[HeldFrame] | None:
        """Wait for the overlap (or the timeout), then switch; None if the successor died."""
        deadline = time.monotonic() + self._settings.handover_timeout_s
        while not handover.overlapped and time.monotonic() < deadline:
            if reader.done() or successor_reader.done():
                break
            await asyncio.sleep(0.01)
        if successor_reader.done():
            return None
        async with self._lock:
            held = handover.switch()
            for frame in held:
                await self._deliver(frame.raw, frame.received_at_us, frame.received_ns)
        return held

    async def _abandon_successor(
        self,
        successor: ClientConnection,
        successor_reader: asyncio.Task[None],
        old: ClientConnection,
    ) -> ClientConnection:
        """The successor died before the switch: keep the old connection and try again soon."""
        exc = successor_reader.exception()
        if exc is not None and not isinstance(exc, WebSocketException | OSError):
            raise exc  # not a connection problem: a bug or the sink failing, never to be hidden
        async with self._lock:
            self._old, self._handover = None, None  # nothing of the successor was published
        await successor.close()
        self._next_rotation_s = RETRY_ROTATION_S
        logger.warning(
            "%s: successor died before the switch (%r); keeping the old one", self.name, exc
        )
        return old

    async def _read(self, ws: ClientConnection) -> None:
        waiting = False
        while True:
            if not waiting:  # silence counts from here: not the time the handler took
                waiting, waiting_since_s = True, time.monotonic()
            # decode=False: orjson parses bytes directly, and the dead-letter topic keeps them as sent.
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                # that lands as recv() completes, and a busy stream then never stops.
                async with asyncio.timeout(SILENCE_CHECK_S):
                    raw = await ws.recv(decode=False)
            except TimeoutError:
                # Judged only while silent: the allowance follows the streams' paces.
                allowance, silent_s = self._allowance(), time.monotonic() - waiting_since_s
                if allowance is None or silent_s < allowance:
                    continue
                # Open, answering pings, and silent longer than its streams allow: dead.
                raise StreamDisconnectedError(
                    f"{self.name}: no frame for {silent_s:.0f}s (its streams allow "
                    f"{allowance:.0f}s); treating the connection as dead"
                ) from None
            except ConnectionClosedError as exc:
                if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                    limit = self._settings.max_frame_bytes * HARD_FRAME_FACTOR
                    await self._refuse(b"", f"a frame over {limit} bytes closed the connection")
                raise
            waiting = False
            self.frames += 1
            received_at_us, received_ns = time.time_ns() // 1000, time.monotonic_ns()
            problem = self._frame_problem(ws, raw)
            if problem is not None:
                await self._refuse(raw, problem, received_at_us)
                continue
            handover = self._handover
            if handover is None:
                await self._deliver(raw, received_at_us, received_ns)
                continue
            async with self._lock:
                if ws is self._old:
                    publish = handover.from_old(raw)
                else:
                    publish = handover.from_successor(HeldFrame(raw, received_at_us, received_ns))
                if publish:
                    await self._deliver(raw, received_at_us, received_ns)

    def _frame_problem(self, ws: ClientConnection, raw: bytes) -> str | None:
        """Why a frame is not handed on (None: it is): Binance sends text frames of bounded size."""
        if isinstance(ws, CheckedConnection) and ws.last_was_binary():
            return "binary frame: Binance sends text frames only"
        if len(raw) > self._settings.max_frame_bytes:
            return f"frame of {len(raw)} bytes over binance.max_frame_bytes"
        return None

    async def _refuse(self, raw: bytes, reason: str, received_at_us: int | None = None) -> None:
        logger.warning("%s: refused a frame: %s", self.name, reason, extra=self._log_fields())
        if self._on_refused is not None:
            at = time.time_ns() // 1000 if received_at_us is None else received_at_us
            await self._on_refused(raw, at, reason)

    async def _deliver(self, raw: bytes, received_at_us: int, received_ns: int) -> None:
        try:
            await self._handler(raw, received_at_us, received_ns)
        except ServerShutdownNotice:
            logger.info("%s: Binance announced a shutdown; rotating now", self.name)
            self._rotate_now.set()

    def _log_fields(self) -> dict[str, object]:
        return {"event_data": {"connection": self.name, "url": self.url}}
