"""Who listens to which stream, and fan-out of encoded frames to them.

The hub is keyed by stream name. Publishing an event encodes it once per frame variant actually
needed (raw or combined, millisecond or microsecond times) into a complete WebSocket frame, and
queues the same bytes for every subscriber. The trading loop then calls :meth:`Hub.drain` once
per burst: each subscriber's queued frames go to its socket in one write.

A reader that does not keep up is Binance's problem only up to a point: the market never waits
for it (a paced market's clock runs on), its frames pile up in its connection's send buffer, and
once more than ``send_buffer_bytes`` wait there (beyond what the kernel's socket buffers hold) the
connection is cut without a closing handshake, as clients of Binance report (close code 1006,
"peer dropped the TCP connection"; docs/binance.md §2). Only the unpaced throughput mode
(``wait_for_readers``) lets the slowest reader brake the market instead.

Why frames are written to the transport directly rather than through ``Connection.send()``:
``send()`` costs a coroutine, a lock and a syscall per frame, which made the simulator the
bottleneck of a benchmark. Server frames are unmasked and no extension is negotiated
(``compression=None``), so a frame's bytes are the same for every connection; they are built
with websockets' own :class:`~websockets.frames.Frame` and written only while the connection is
OPEN, whole frames at a time, so they never interleave with websockets' pings or close frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

from gateway.simulator.markets import Route
from gateway.simulator.payloads import TimeUnit, combined_frame, encode

logger = logging.getLogger(__name__)

_Record = TypeVar("_Record")
PayloadBuilder = Callable[[_Record, TimeUnit], object]
Maker = Callable[[TimeUnit], object]

_CLOSED_STATS_KEPT = 1_000
_UNITS = (TimeUnit.MILLISECOND, TimeUnit.MICROSECOND)


@dataclass(frozen=True, slots=True)
class ConnectionStats:
    """One connection as tests see it: what it asked for and how many frames it was sent."""

    connection_id: int
    target: str
    streams: tuple[str, ...]
    frames_sent: int
    is_open: bool
    dropped_slow: bool = False
    """Cut because the client did not read fast enough (its send buffer overflowed)."""


def _call(make: Maker, unit: TimeUnit) -> object:
    return make(unit)


def _with_extra_field(build: PayloadBuilder[_Record]) -> PayloadBuilder[_Record]:
    def extended(record: _Record, unit: TimeUnit) -> object:
        payload = build(record, unit)
        if isinstance(payload, dict):
            return {**payload, "zz": "a field Binance might add tomorrow"}
        return payload

    return extended


def text_frame(data: bytes) -> bytes:
    """A complete unmasked WebSocket text frame (FIN, opcode 1) carrying ``data``.

    Built by hand (RFC 6455 §5.2) rather than with websockets' ``Frame.serialize()``, which
    validates and buffers and cost a fifth of the simulator's time per event; a test checks
    both agree.
    """
    size = len(data)
    if size < 126:
        return bytes((0x81, size)) + data
    if size < 65_536:
        return b"\x81\x7e" + size.to_bytes(2, "big") + data
    return b"\x81\x7f" + size.to_bytes(8, "big") + data


def frame_variant(combined: bool, unit: TimeUnit) -> int:
    """Index of one of the four ways an event can be framed (wrapper x time unit)."""
    return (2 if unit is TimeUnit.MICROSECOND else 0) + (1 if combined else 0)


class OutgoingEvent(Generic[_Record]):
    """One event on one stream, encoded lazily and at most once per frame variant."""

    __slots__ = ("_build", "_payloads", "_record", "_wire", "stream")

    def __init__(self, stream: str, record: _Record, build: PayloadBuilder[_Record]) -> None:
        self.stream = stream
        self._record = record
        self._build = build
        self._payloads: list[bytes | None] = [None, None]  # per time unit
        self._wire: list[bytes | None] = [None, None, None, None]  # per frame_variant()

    def frame(self, variant: int) -> bytes:
        """The complete WebSocket text frame for connections of this ``variant``."""
        wire = self._wire[variant]
        if wire is None:
            payload = self._payload(variant >> 1)
            if variant & 1:
                payload = combined_frame(self.stream, payload)
            wire = self._wire[variant] = text_frame(payload)
        return wire

    def _payload(self, unit_index: int) -> bytes:
        payload = self._payloads[unit_index]
        if payload is None:
            payload = encode(self._build(self._record, _UNITS[unit_index]))
            self._payloads[unit_index] = payload
        return payload


class Subscriber:
    """One WebSocket connection's subscriptions, frame settings, queued frames and counters."""

    def __init__(
        self,
        connection: ServerConnection,
        connection_id: int,
        *,
        combined: bool,
        time_unit: TimeUnit,
        route: Route = Route.NONE,
        events: frozenset[str] = frozenset(),
        send_buffer_bytes: int | None = None,
    ) -> None:
        self.connection = connection
        self.send_buffer_bytes = send_buffer_bytes
        """Unsent bytes this connection may hold before it is cut; ``None`` = no limit."""
        self.dropped_slow = False
        """Whether it was cut for not reading (its send buffer overflowed)."""
        self.connection_id = connection_id
        self.time_unit = time_unit
        self.route = route
        self.events = events
        """``/private`` connections: the user-data event types wanted (empty = all)."""
        self.streams: dict[str, None] = {}  # an ordered set: LIST_SUBSCRIPTIONS keeps order
        self.silent: set[str] = set()
        """Accepted streams this connection's route never delivers (USDⓈ-M, docs/binance.md §1.2)."""
        self.stalled = False
        """A stall fault: the connection stays open but gets no more frames."""
        self.frames_sent = 0
        self._combined = combined
        self._variant = frame_variant(combined, time_unit)
        self._queued: list[bytes] = []

    @property
    def combined(self) -> bool:
        """Whether frames are wrapped as ``{"stream", "data"}`` (SET_PROPERTY can change it)."""
        return self._combined

    @combined.setter
    def combined(self, combined: bool) -> None:
        self._combined = combined
        self._variant = frame_variant(combined, self.time_unit)

    @property
    def is_open(self) -> bool:
        """Whether frames can still be written."""
        return self.connection.protocol.state is State.OPEN

    def deliver(self, event: OutgoingEvent[_Record]) -> None:
        """Queue one event's frame; :meth:`write_queued` sends the queue."""
        self._queued.append(event.frame(self._variant))

    def write_queued(self) -> None:
        """Hand every queued frame to the socket in one write (dropped if no longer OPEN)."""
        queued = self._queued
        if not queued:
            return
        if self.connection.protocol.state is State.OPEN and not self.stalled:
            transport = self.connection.transport
            transport.write(b"".join(queued))
            self.frames_sent += len(queued)
            limit = self.send_buffer_bytes
            if limit is not None and transport.get_write_buffer_size() > limit:
                self._drop_slow_reader(transport.get_write_buffer_size())
        queued.clear()

    def _drop_slow_reader(self, unsent: int) -> None:
        # abort(), not close(): a closing handshake would wait behind the very bytes the client
        # does not read; Binance's clients see the TCP connection dropped (1006).
        self.dropped_slow = True
        logger.info(
            "stream connection %d dropped: client not reading (%d bytes unsent)",
            self.connection_id,
            unsent,
        )
        self.connection.transport.abort()

    def write_frame(self, data: bytes) -> None:
        """Queue an out-of-band frame's bytes (faults, user data): sent with the next write."""
        self._queued.append(text_frame(data))

    async def drain(self) -> None:
        """Wait while the socket's write buffer is above its high-water mark."""
        if not self.is_open:
            return
        # Connection.drain() is the flow-control wait send() uses internally: one per burst
        # instead of one send() per frame (see the module docstring).
        with contextlib.suppress(OSError):  # the connection is gone; its handler cleans up
            await self.connection.drain()

    async def flush(self) -> None:
        """Wait until every written frame has left the process (or the connection closed)."""
        if not self.is_open:
            return
        transport = self.connection.transport
        low, high = transport.get_write_buffer_limits()
        # With both marks at zero, any buffered byte pauses the protocol and drain() returns
        # only once the buffer is empty: an event-driven flush instead of polling the size.
        transport.set_write_buffer_limits(high=0, low=0)
        try:
            await self.drain()
        finally:
            if not transport.is_closing():
                transport.set_write_buffer_limits(high=high, low=low)

    def stats(self) -> ConnectionStats:
        """A snapshot for tests."""
        return ConnectionStats(
            connection_id=self.connection_id,
            target=self.connection.request.path if self.connection.request else "",
            streams=tuple(self.streams),
            frames_sent=self.frames_sent,
            is_open=self.is_open,
            dropped_slow=self.dropped_slow,
        )


class Hub:
    """The registry of subscribers by stream name, and the fan-out of events to them."""

    def __init__(self, *, wait_for_readers: bool = False) -> None:
        self.wait_for_readers = wait_for_readers
        """Whether :meth:`drain` waits for full socket buffers (the unpaced throughput mode);
        otherwise the market never waits and a reader that falls behind is cut."""
        self.never_served: set[str] = set()
        """Stream names accepted and listed but never delivered on any connection subscribing
        from now on (a route or name Binance accepts and does not serve)."""
        self._by_stream: dict[str, tuple[Subscriber, ...]] = {}
        self._subscribers: dict[int, Subscriber] = {}
        self._closed: deque[ConnectionStats] = deque(maxlen=_CLOSED_STATS_KEPT)
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._change_listeners: list[Callable[[], None]] = []
        self.extra_fields = 0
        """Extra-field fault: how many more published payloads get one more field."""

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every change of connections or subscriptions."""
        self._change_listeners.append(listener)

    def next_connection_id(self) -> int:
        """A fresh id for a new connection."""
        return next(self._ids)

    def add(self, subscriber: Subscriber, streams: Iterable[str]) -> None:
        """Register a new connection with the streams of its URL."""
        self._subscribers[subscriber.connection_id] = subscriber
        self.subscribe(subscriber, streams)

    def remove(self, subscriber: Subscriber) -> None:
        """Forget a closed connection, keeping its final counters."""
        self.unsubscribe(subscriber, list(subscriber.streams))
        if self._subscribers.pop(subscriber.connection_id, None) is not None:
            self._closed.append(subscriber.stats())
        self._notify()

    def subscribe(
        self, subscriber: Subscriber, streams: Iterable[str], *, silent: Iterable[str] = ()
    ) -> None:
        """Add streams to a connection (names already held are ignored).

        ``silent`` streams are listed as subscribed but never delivered (a USDⓈ-M route that
        does not carry them).
        """
        quiet = set(silent) | self.never_served
        for name in streams:
            if name not in subscriber.streams:
                subscriber.streams[name] = None
                if name in quiet:
                    subscriber.silent.add(name)
                else:
                    self._by_stream[name] = (*self._by_stream.get(name, ()), subscriber)
        self._notify()

    def unsubscribe(self, subscriber: Subscriber, streams: Iterable[str]) -> None:
        """Remove streams from a connection (names it does not hold are ignored)."""
        for name in streams:
            if name in subscriber.streams:
                del subscriber.streams[name]
                if name in subscriber.silent:
                    subscriber.silent.discard(name)
                    continue
                remaining = tuple(s for s in self._by_stream[name] if s is not subscriber)
                if remaining:
                    self._by_stream[name] = remaining
                else:
                    del self._by_stream[name]
        self._notify()

    def has_subscribers(self, stream: str) -> bool:
        """Whether any open connection listens to ``stream``."""
        return stream in self._by_stream

    @property
    def connection_count(self) -> int:
        """How many connections are registered."""
        return len(self._subscribers)

    @property
    def subscription_count(self) -> int:
        """How many (connection, stream) subscriptions exist across all connections."""
        return sum(len(subscriber.streams) for subscriber in self._subscribers.values())

    def publish(self, stream: str, record: _Record, build: PayloadBuilder[_Record]) -> None:
        """Send one event to every subscriber of ``stream`` (cheap when there is none)."""
        subscribers = self._by_stream.get(stream)
        if subscribers:
            if self.extra_fields:
                self.extra_fields -= 1
                build = _with_extra_field(build)
            event = OutgoingEvent(stream, record, build)
            for subscriber in subscribers:
                subscriber.deliver(event)

    def publish_lazy(self, stream: str, make: Maker) -> None:
        """Like :meth:`publish` for a payload built by ``make(unit)``."""
        self.publish(stream, make, _call)

    def stream_names(self) -> list[str]:
        """Every stream that has at least one delivering subscriber."""
        return list(self._by_stream)

    def subscribers(self) -> list[Subscriber]:
        """Every open connection."""
        return list(self._subscribers.values())

    def subscriber(self, connection_id: int) -> Subscriber | None:
        """The open connection with this id."""
        return self._subscribers.get(connection_id)

    def publish_user(self, listen_key: str, event_type: str, payload: object) -> None:
        """Send a user-data event to every connection of ``listen_key`` that wants its type."""
        subscribers = self._by_stream.get(listen_key, ())
        if not subscribers:
            return
        raw = encode(payload)
        for subscriber in subscribers:
            if subscriber.events and event_type not in subscriber.events:
                continue
            body = combined_frame(listen_key, raw) if subscriber.combined else raw
            subscriber.write_frame(body)

    def write_queued(self) -> None:
        """Write every subscriber's queued frames to its socket."""
        for subscriber in self._subscribers.values():
            subscriber.write_queued()

    async def drain(self) -> None:
        """Write queued frames; with ``wait_for_readers``, then wait until no write buffer is
        over its high-water mark."""
        self.write_queued()
        if not self.wait_for_readers:
            return
        for subscriber in list(self._subscribers.values()):
            await subscriber.drain()

    async def flush(self) -> None:
        """Write queued frames, then wait until they have all left the process."""
        self.write_queued()
        for subscriber in list(self._subscribers.values()):
            await subscriber.flush()

    async def wait_until(
        self, condition: Callable[[], bool], timeout_s: float | None = None
    ) -> None:
        """Wait until ``condition()`` holds, re-checking on every subscription change.

        Raises:
            TimeoutError: it did not hold within ``timeout_s`` (``None``: wait forever).
        """
        async with asyncio.timeout(timeout_s):
            while not condition():
                await self._changed.wait()

    def stats(self) -> list[ConnectionStats]:
        """Every connection, closed ones (the last 1000) first, then open ones."""
        return [*self._closed, *(s.stats() for s in self._subscribers.values())]

    def _notify(self) -> None:
        # Wake the current waiters, then arm a fresh event for the next change.
        self._changed.set()
        self._changed = asyncio.Event()
        for listener in self._change_listeners:
            listener()
