"""One Binance WebSocket connection: connect, read frames, hand them on, reconnect.

The protocol work (parsing, sequencing) happens in the frame handler, which is pure code behind a
thin async shell; this module only moves frames and decides, through ``gateway.binance.policy``,
whether a failure is worth a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
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

from gateway.binance.policy import SlidingWindowLimit, backoff, is_retriable
from gateway.binance.rotation import Phase, Rotation
from gateway.errors import ConfigError, ServerShutdownNotice, StreamDisconnectedError, UpstreamError
from gateway.settings import BinanceSettings

logger = logging.getLogger(__name__)

FrameHandler = Callable[[bytes, int, int], Awaitable[None]]
"""``handler(frame, received_at_us, received_monotonic_ns)``."""
SilenceAllowance = Callable[[], float | None]
"""How long the connection may deliver nothing at all before it is dead (``None``: nothing on
it can be judged by silence; pings alone watch it)."""
SILENCE_CHECK_S = 0.5
"""How often a connection's silence is judged (its allowance is at least ``stale_after_s``)."""

RefusedHandler = Callable[[bytes, int, str], Awaitable[None]]
"""``refused(frame, received_at_us, reason)``: a frame the connection will not hand on."""

HARD_FRAME_FACTOR = 4
"""websockets reads frames up to this many times ``max_frame_bytes``: those over the limit are
dead-lettered with their first bytes and the stream goes on; only beyond this (memory) does the
connection close, with a dead letter saying so."""


class _KindAssembler(Assembler):
    """websockets' message assembler, also noting whether each message was a binary frame
    (``recv(decode=False)`` returns bytes either way, and Binance sends text only), and handing
    out the messages already received without a coroutine each (:meth:`take`)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.binary: deque[bool] = deque()  # one per message, in order, from its first frame

    def put(self, frame: Frame) -> None:
        super().put(frame)
        if frame.opcode is not Opcode.CONT:
            self.binary.append(frame.opcode is Opcode.BINARY)

    def take(self) -> bytes | None:
        """The next message if it came whole in one frame and is already received, as
        ``get(decode=False)`` would return it; None if ``get`` must wait or reassemble.

        Reads the frame queue websockets' ``get`` reads (``frames.queue``, the same in
        websockets 15 to 17): recv() per buffered frame cost ~0.45 µs more.
        """
        queue = self.frames.queue
        if not queue or not queue[0].fin or self.get_in_progress:
            return None
        data = queue.popleft().data
        self.maybe_resume()
        return data if type(data) is bytes else bytes(data)


class CheckedConnection(ClientConnection):
    """A client connection that can tell binary messages from text ones, and hands out the
    messages it already holds without waiting."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # A cast, as websockets does: uvloop's transports are not asyncio.Transport subclasses.
        transport = cast(asyncio.Transport, transport)
        self.recv_messages = self._assembler = _KindAssembler(
            self.max_queue_high,
            self.max_queue_low,
            pause=transport.pause_reading,
            resume=transport.resume_reading,
        )

    def last_was_binary(self) -> bool:
        """Whether the message just received (``recv`` or :meth:`take_ready`) was binary."""
        return self._assembler.binary.popleft()

    def take_ready(self) -> bytes | None:
        """The next message if it is already here whole (None: ``recv`` it)."""
        return self._assembler.take()


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


BINARY_FRAME = "binary frame: Binance sends text frames only"


def oversized(size: int) -> str:
    return f"frame of {size} bytes over binance.max_frame_bytes"


class _Watchdog:
    """Judges one connection's silence: one timer per connection that re-arms itself every
    ``SILENCE_CHECK_S``, instead of a timeout around every read (that cost ~3.5 µs per frame).

    The reader marks itself ``busy`` from a frame's arrival until it waits again, and counts
    ``frames``. A check that finds it busy, or finds new frames, starts the silence no earlier
    than now: the time spent handing frames on (waiting for Kafka) is never silence, and a
    connection is judged no sooner than its allowance and at most two checks later. A dead
    connection is aborted; its reader then raises ``verdict``.
    """

    __slots__ = (
        "_allowance",
        "_loop",
        "_name",
        "_quiet_since_s",
        "_seen",
        "_timer",
        "_ws",
        "busy",
        "frames",
        "verdict",
    )

    def __init__(self, ws: ClientConnection, allowance: SilenceAllowance, name: str) -> None:
        self.busy = False
        self.frames = 0
        self.verdict: Exception | None = None
        self._ws, self._allowance, self._name = ws, allowance, name
        self._loop = asyncio.get_running_loop()
        self._seen = 0
        self._quiet_since_s = self._loop.time()
        self._timer = self._loop.call_later(SILENCE_CHECK_S, self._check)

    def stop(self) -> None:
        self._timer.cancel()

    def _check(self) -> None:
        now_s = self._loop.time()
        if self.busy or self.frames != self._seen:
            self._seen, self._quiet_since_s = self.frames, now_s
        else:
            # Judged only while silent: the allowance follows the streams' paces.
            try:
                allowance = self._allowance()
            except Exception as exc:  # noqa: BLE001 - a bug: the reader raises it, never hidden
                self._kill(exc)
                return
            silent_s = now_s - self._quiet_since_s
            if allowance is not None and silent_s >= allowance:
                # Open, answering pings, and silent longer than its streams allow: dead.
                self._kill(
                    StreamDisconnectedError(
                        f"{self._name}: no frame for {silent_s:.0f}s (its streams allow "
                        f"{allowance:.0f}s); treating the connection as dead"
                    )
                )
                return
        self._timer = self._loop.call_later(SILENCE_CHECK_S, self._check)

    def _kill(self, verdict: Exception) -> None:
        self.verdict = verdict
        self._ws.transport.abort()  # recv() raises at once: no closing handshake with a dead peer


async def _ended(reader: asyncio.Task[None]) -> None:
    """Cancel ``reader`` and wait until it ended, without raising its failure.

    Only ever called on the way out of a connection, with an exception in flight: a failure of
    the reader raised here would replace it. Above all a cancellation: a reader that had just
    died (its connection silent or cut) turned the gateway's stop into a reconnect, and the
    stop then waited for a client that reconnected forever. A failure that mattered was raised
    where the reader's end was noticed; here it is only logged.
    """
    reader.cancel()
    await asyncio.wait([reader])
    if not reader.cancelled() and (exc := reader.exception()) is not None:
        logger.debug("%s had ended: %r", reader.get_name(), exc)


def _rotation_due(reader: asyncio.Task[None], rotation: Rotation) -> bool:
    return reader.done() or rotation.rotation_requested


class BinanceStreamClient:
    """Keeps one combined-stream connection open and feeds every frame to ``handler``.

    Before Binance's 24-hour cut (``rotate_after_s``), or when Binance announces a shutdown, the
    connection is replaced make-before-break (:mod:`gateway.binance.rotation`): the successor is
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
        self._on_reconnect = on_reconnect
        # Without a liveness monitor: one fixed allowance per connection (stale_after_s).
        self._allowance = silence_allowance or (lambda: settings.stale_after_s)
        self._on_connected = on_connected
        self.frames = 0
        self._rotation = Rotation(name, settings.rotate_after_s, settings.handover_timeout_s)
        # Set when what the connection supervisor waits for may have happened: a reader ended,
        # a rotation was asked for, the handover's two connections overlapped.
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # frames are handed on one at a time, whichever connection
        self._closing: set[asyncio.Task[None]] = set()  # old connections finishing their close

    @property
    def phase(self) -> Phase:
        return self._rotation.phase

    @property
    def rotation(self) -> Rotation:
        """The connections' phase machine, to look at (the client alone drives it)."""
        return self._rotation

    @property
    def handover_duplicates(self) -> int:
        """Frames that arrived on both connections of a rotation, published once."""
        return self._rotation.duplicates

    async def run(self) -> None:
        """Read until cancelled; reconnect with capped jittered backoff on retriable failures."""
        rotation = self._rotation
        rotation.start()
        delays = backoff()
        try:
            while True:
                try:
                    with map_websocket_errors(self.url):
                        ws = await self._connect()
                        number = rotation.connected()
                        logger.info("connected %s", self.name, extra=self._log_fields())
                        if self._on_connected is not None:
                            self._on_connected()
                        self.connected.set()
                        delays = backoff()  # a connection that opened resets the backoff
                        await self._stream(ws, number)
                except (OSError, TimeoutError, UpstreamError) as exc:
                    if not is_retriable(exc):
                        raise
                    if rotation.phase is not Phase.CONNECTING:
                        rotation.lost()
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
        finally:
            rotation.close()
            if self._closing:
                # Replaced connections still in their closing handshake (close_timeout at most):
                # the client leaves no socket open behind it.
                await asyncio.wait(self._closing)

    def retarget(self, url: str) -> None:
        """Stream ``url``'s set of streams from now on (the shard plan changed).

        A live connection is replaced make-before-break like a rotation, so the streams both
        URLs share lose nothing and repeat nothing; a connection not open yet uses it next.
        """
        if url == self.url:
            return
        self.url = url
        self._rotation.replace()
        self._wake.set()

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

    async def _stream(self, ws: ClientConnection, number: int) -> None:
        """Serve ``ws``, handing over to successors when due; returns only by raising."""
        rotation = self._rotation
        current, reader = ws, self._start_reader(ws, number, "reader")
        try:
            while True:
                await self._until(
                    functools.partial(_rotation_due, reader, rotation), rotation.due_in_s
                )
                if reader.done():
                    reader.result()  # the connection ended: raises ConnectionClosed and the like
                    raise StreamDisconnectedError(f"{self.url}: reader ended")
                # The successor's reader keeps running across the switch: no pause in reading.
                current, reader = await self._hand_over(current, reader)
        finally:
            await _ended(reader)
            await current.close()

    def _start_reader(self, ws: ClientConnection, number: int, role: str) -> asyncio.Task[None]:
        reader = asyncio.create_task(self._read(ws, number), name=f"{self.name}-{role}")
        reader.add_done_callback(lambda _: self._wake.set())
        return reader

    async def _until(self, condition: Callable[[], bool], timeout_s: float) -> None:
        """Until ``condition()`` holds (looked at again each time the client is woken) or
        ``timeout_s`` has passed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while not condition():
                    self._wake.clear()
                    await self._wake.wait()

    async def _hand_over(
        self, old: ClientConnection, reader: asyncio.Task[None]
    ) -> tuple[ClientConnection, asyncio.Task[None]]:
        """Open the successor, overlap, switch; on failure keep the old connection. Returns the
        connection to serve and its running reader."""
        rotation = self._rotation
        # From before the successor connects, the old connection's frames are recorded: any of
        # them may also arrive on the successor.
        number = rotation.open_successor()
        try:
            successor = await self._connect()
        except (OSError, TimeoutError, WebSocketException) as exc:
            rotation.keep_old()
            logger.warning("%s: successor failed to open (%s); keeping the old one", self.name, exc)
            return old, reader
        except BaseException:
            rotation.keep_old()  # cancelled while connecting: the old connection is closed next
            raise
        rotation.successor_opened()
        successor_reader = self._start_reader(successor, number, "successor")
        try:
            await self._until(
                lambda: rotation.overlapped or reader.done() or successor_reader.done(),
                self._settings.handover_timeout_s,
            )
            if successor_reader.done():
                await self._abandon_successor(successor, successor_reader)
                return old, reader
            if rotation.switch_loses(old_ended=reader.done()):
                logger.warning(
                    "%s: the old connection ended before the overlap; the successor takes over "
                    "as after a reconnect",
                    self.name,
                    extra=self._log_fields(),
                )
                # Before the held frames go: the streams' windows open from their last event.
                if self._on_connected is not None:
                    self._on_connected()
            async with self._lock:
                for frame in rotation.switch(time.monotonic_ns()):
                    await self._deliver(frame.raw, frame.received_at_us, frame.received_ns, number)
        except BaseException:
            # Cancelled (the gateway is stopping) or failing: leave no reader or socket behind.
            await _ended(successor_reader)
            await successor.close()
            raise
        reader.cancel()
        # Closing waits for the peer's closing handshake; never hold up reading for it.
        closing = asyncio.create_task(old.close(), name=f"{self.name}-close-old")
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        self.rotations += 1
        logger.info(
            "%s: rotated to a new connection (%d frames seen on both so far, published once)",
            self.name,
            self.handover_duplicates,
            extra=self._log_fields(),
        )
        return successor, successor_reader

    async def _abandon_successor(
        self, successor: ClientConnection, successor_reader: asyncio.Task[None]
    ) -> None:
        """The successor died before the switch: keep the old connection and try again soon."""
        exc = successor_reader.exception()
        if exc is not None and not isinstance(exc, WebSocketException | OSError | UpstreamError):
            raise exc  # not a connection problem: a bug or the sink failing, never to be hidden
        self._rotation.keep_old()  # nothing of the successor was published
        await successor.close()
        logger.warning(
            "%s: successor died before the switch (%r); keeping the old one", self.name, exc
        )

    async def _read(self, ws: ClientConnection, number: int) -> None:
        assert isinstance(ws, CheckedConnection)  # _connect makes them
        watchdog = _Watchdog(ws, self._allowance, self.name)
        try:
            await self._read_frames(ws, number, watchdog)
        except ConnectionClosed as exc:
            if watchdog.verdict is not None:
                raise watchdog.verdict from exc
            raise
        finally:
            watchdog.stop()

    async def _read_frames(self, ws: CheckedConnection, number: int, watchdog: _Watchdog) -> None:
        rotation, lock, max_bytes = self._rotation, self._lock, self._settings.max_frame_bytes
        while True:
            watchdog.busy = False  # silence counts from here: not the time the handler took
            # decode=False: orjson parses bytes, and the dead-letter topic keeps them as sent.
            try:
                raw = await ws.recv(decode=False)
            except ConnectionClosedError as exc:
                if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                    limit = max_bytes * HARD_FRAME_FACTOR
                    await self._refuse(b"", f"a frame over {limit} bytes closed the connection")
                raise
            watchdog.busy = True
            # Frames are handed on under the lock even with one connection: a switch must never
            # hand on the successor's frames while the old one's last is still being handed on.
            # One hold for all the frames already received (one per frame cost ~0.8 µs).
            async with lock:
                while True:
                    watchdog.frames += 1
                    self.frames += 1
                    received_at_us, received_ns = time.time_ns() // 1000, time.monotonic_ns()
                    if ws.last_was_binary():
                        await self._refuse(raw, BINARY_FRAME, received_at_us)
                    elif len(raw) > max_bytes:
                        await self._refuse(raw, oversized(len(raw)), received_at_us)
                    elif rotation.handover is None and number == rotation.serving:
                        await self._deliver(raw, received_at_us, received_ns, number)
                    elif rotation.receive(number, raw, received_at_us, received_ns):
                        self._wake_on_overlap()
                        await self._deliver(raw, received_at_us, received_ns, number)
                    else:
                        self._wake_on_overlap()
                        if rotation.retired(number):
                            return  # replaced: its successor carries the streams now
                    if (ready := ws.take_ready()) is None:
                        break
                    raw = ready

    def _wake_on_overlap(self) -> None:
        if self._rotation.overlapped:
            self._wake.set()

    async def _refuse(self, raw: bytes, reason: str, received_at_us: int | None = None) -> None:
        logger.warning("%s: refused a frame: %s", self.name, reason, extra=self._log_fields())
        if self._on_refused is not None:
            at = time.time_ns() // 1000 if received_at_us is None else received_at_us
            await self._on_refused(raw, at, reason)

    async def _deliver(
        self, raw: bytes, received_at_us: int, received_ns: int, number: int
    ) -> None:
        try:
            await self._handler(raw, received_at_us, received_ns)
        except ServerShutdownNotice:
            logger.info("%s: Binance announced a shutdown; rotating now", self.name)
            self._rotation.replace(number)
            self._wake.set()

    def _log_fields(self) -> dict[str, object]:
        return {"event_data": {"connection": self.name, "url": self.url}}
