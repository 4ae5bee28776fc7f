"""The WebSocket client against a loopback ``websockets`` server: no broker, seconds (issue 12 item 7).

The server is a scripted feed: a ticker broadcasts frame ``n`` to every open connection, as
Binance sends the same event on every connection subscribed to its stream, so a rotation's two
connections overlap as they do in production. The client's handler only records what it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from gateway.adapters.binance_ws import BinanceStreamClient, map_websocket_errors
from gateway.binance.policy import SlidingWindowLimit
from gateway.binance.rotation import Phase
from gateway.errors import ConfigError, ServerShutdownNotice, StreamDisconnectedError, UpstreamError
from gateway.settings import BinanceSettings

LIMIT = 1024
TICK_S = 0.01


def frame(n: int) -> bytes:
    return orjson.dumps({"stream": "btcusdt@trade", "data": {"t": n}})


def number(raw: bytes) -> int:
    value = orjson.loads(raw)["data"]["t"]
    assert isinstance(value, int)
    return value


@dataclass
class Feed:
    """A loopback Binance: every open connection gets the same numbered frames.

    ``script(index, ws)`` runs first for the ``index``-th connection (from 1); returning False
    leaves that connection out of the broadcast (it then only serves what the script sent).
    ``refuse`` maps a connection index to the HTTP status its handshake is refused with;
    the handshakes of ``stall`` wait until the feed stops.
    """

    script: Callable[[int, ServerConnection], Awaitable[bool]] | None = None
    refuse: dict[int, int] = field(default_factory=dict)
    stall: set[int] = field(default_factory=set)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    connections: int = 0
    paths: list[str] = field(default_factory=list)
    live: set[ServerConnection] = field(default_factory=set)
    sent: int = 0
    port: int = 0

    def url(self, streams: str = "btcusdt@trade") -> str:
        return f"ws://127.0.0.1:{self.port}/stream?streams={streams}"

    async def process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        self.connections += 1
        self.paths.append(request.path)
        if self.connections in self.stall:
            await self.stopping.wait()
        status = self.refuse.get(self.connections)
        return None if status is None else ws.respond(status, "refused\n")

    async def handler(self, ws: ServerConnection) -> None:
        index = self.connections
        broadcast = True if self.script is None else await self.script(index, ws)
        if broadcast:
            self.live.add(ws)
        try:
            await ws.wait_closed()
        finally:
            self.live.discard(ws)

    async def tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            if self.live:
                self.sent += 1
                raw = frame(self.sent).decode()
                for ws in list(self.live):
                    with contextlib.suppress(Exception):
                        await ws.send(raw)


@contextlib.asynccontextmanager
async def running(feed: Feed) -> AsyncIterator[Feed]:
    async with serve(
        feed.handler, "127.0.0.1", 0, process_request=feed.process_request, max_size=None
    ) as server:
        feed.port = server.sockets[0].getsockname()[1]
        ticker = asyncio.create_task(feed.tick())
        try:
            yield feed
        finally:
            feed.stopping.set()
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)


class Recorder:
    """The client's frame handler and refusal handler: records, in order."""

    def __init__(self, shutdown_at: int | None = None) -> None:
        self.frames: list[bytes] = []
        self.refused: list[tuple[bytes, str]] = []
        self._shutdown_at = shutdown_at

    async def __call__(self, raw: bytes, received_at_us: int, received_ns: int) -> None:
        assert received_at_us > 0 and received_ns > 0
        self.frames.append(raw)
        if self._shutdown_at is not None and number(raw) == self._shutdown_at:
            raise ServerShutdownNotice("serverShutdown")  # what the pipeline raises for it

    async def refuse(self, raw: bytes, received_at_us: int, reason: str) -> None:
        self.refused.append((raw, reason))

    def numbers(self) -> list[int]:
        return [number(raw) for raw in self.frames]


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - polling a recorder, not an event
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def client_running(client: BinanceStreamClient) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(client.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def contiguous(numbers: list[int]) -> bool:
    return numbers == list(range(numbers[0], numbers[0] + len(numbers)))


async def test_frames_arrive_in_order_and_the_connection_is_announced() -> None:
    connected: list[str] = []
    async with running(Feed()) as feed:
        rec = Recorder()
        client = BinanceStreamClient(
            feed.url(), rec, BinanceSettings(), name="c",
            on_connected=lambda: connected.append("up"),
        )  # fmt: skip
        async with client_running(client):
            await until(lambda: len(rec.frames) >= 20)
            assert client.connected.is_set()
    numbers = rec.numbers()
    assert contiguous(numbers)
    assert connected == ["up"]
    assert client.frames >= 20 and client.reconnects == 0 and client.rotations == 0


async def test_a_silent_connection_is_dead_and_replaced() -> None:
    async def silent_first(index: int, ws: ServerConnection) -> bool:
        return index > 1  # the first connection answers pings but sends nothing

    reconnects: list[int] = []
    async with running(Feed(script=silent_first)) as feed:
        rec = Recorder()
        client = BinanceStreamClient(
            feed.url(), rec, BinanceSettings(), name="c",
            silence_allowance=lambda: 0.2,
            on_reconnect=lambda: reconnects.append(1),
        )  # fmt: skip
        async with client_running(client):
            await until(lambda: len(rec.frames) >= 3)
    assert client.reconnects == 1 and reconnects == [1]
    assert feed.connections == 2


async def test_no_allowance_means_silence_is_never_judged() -> None:
    async def silent(index: int, ws: ServerConnection) -> bool:
        return False

    async with running(Feed(script=silent)) as feed:
        client = BinanceStreamClient(
            feed.url(), Recorder(), BinanceSettings(), name="c", silence_allowance=lambda: None
        )
        async with client_running(client) as task:
            await asyncio.sleep(1.2)  # past two silence checks
            assert not task.done()
    assert client.reconnects == 0 and feed.connections == 1


async def test_time_spent_handing_a_frame_on_is_not_silence() -> None:
    """Waiting for Kafka (here: a handler that takes 1.2 s) is never counted as silence."""

    class Slow(Recorder):
        async def __call__(self, raw: bytes, received_at_us: int, received_ns: int) -> None:
            await super().__call__(raw, received_at_us, received_ns)
            if len(self.frames) == 1:
                await asyncio.sleep(1.2)  # past two silence checks, six allowances

    async with running(Feed()) as feed:
        rec = Slow()
        client = BinanceStreamClient(
            feed.url(), rec, BinanceSettings(), name="c", silence_allowance=lambda: 0.2
        )
        async with client_running(client):
            await until(lambda: len(rec.frames) >= 30)
    assert client.reconnects == 0 and feed.connections == 1
    assert contiguous(rec.numbers())


async def test_silence_is_judged_by_the_connections_own_frames(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A live connection is judged every check: the verdict names the silence and allowance."""

    async def fall_silent(index: int, ws: ServerConnection) -> bool:
        if index == 1:
            for n in range(3):
                await ws.send(frame(-10 - n).decode())
            return False  # then nothing more on the first connection
        return True

    async with running(Feed(script=fall_silent)) as feed:
        rec = Recorder()
        client = BinanceStreamClient(
            feed.url(), rec, BinanceSettings(), name="c", silence_allowance=lambda: 0.7
        )
        async with client_running(client):
            await until(lambda: client.reconnects == 1 and len(rec.frames) >= 5)
    assert rec.numbers()[:3] == [-10, -11, -12]
    verdict = r"c: no frame for \d+s \(its streams allow 1s\); treating the connection as dead"
    assert re.search(verdict, caplog.text)


async def test_a_failing_silence_allowance_is_a_bug_and_is_raised() -> None:
    async def silent(index: int, ws: ServerConnection) -> bool:
        return False

    def broken() -> float:
        raise RuntimeError("allowance bug")

    async with running(Feed(script=silent)) as feed:
        client = BinanceStreamClient(
            feed.url(), Recorder(), BinanceSettings(), name="c", silence_allowance=broken
        )
        with pytest.raises(RuntimeError, match="allowance bug"):
            await asyncio.wait_for(client.run(), 10)
    assert client.reconnects == 0 and client.phase is Phase.CLOSED


async def test_rotation_is_make_before_break_nothing_lost_nothing_repeated() -> None:
    settings = BinanceSettings(rotate_after_s=0.3, handover_timeout_s=5.0)
    async with running(Feed()) as feed:
        rec = Recorder()
        client = BinanceStreamClient(feed.url(), rec, settings, name="c")
        async with client_running(client):
            await until(lambda: client.rotations >= 2 and len(rec.frames) >= 60)
    numbers = rec.numbers()
    assert contiguous(numbers), numbers
    assert client.reconnects == 0
    assert feed.connections >= 3
    assert client.handover_duplicates >= 1  # the overlap was seen, and published once


async def test_server_shutdown_switches_to_a_successor_at_once() -> None:
    async with running(Feed()) as feed:
        rec = Recorder(shutdown_at=5)
        client = BinanceStreamClient(feed.url(), rec, BinanceSettings(), name="c")
        async with client_running(client):
            await until(lambda: client.rotations == 1 and len(rec.frames) >= 30)
    assert contiguous(rec.numbers())
    assert client.reconnects == 0 and feed.connections == 2


async def test_retarget_moves_a_live_connection_make_before_break() -> None:
    async with running(Feed()) as feed:
        rec = Recorder()
        client = BinanceStreamClient(feed.url(), rec, BinanceSettings(), name="c")
        async with client_running(client):
            await until(lambda: len(rec.frames) >= 5)
            client.retarget(feed.url())  # the same streams: nothing to do
            client.retarget(feed.url("btcusdt@trade/ethusdt@trade"))
            await until(lambda: client.rotations == 1 and len(rec.frames) >= 30)
    assert contiguous(rec.numbers())
    assert feed.paths[-1].endswith("btcusdt@trade/ethusdt@trade")
    assert feed.connections == 2


def test_retarget_before_connecting_only_changes_the_url() -> None:
    client = BinanceStreamClient("ws://127.0.0.1:1/a", Recorder(), BinanceSettings(), name="c")
    client.retarget("ws://127.0.0.1:1/b")
    assert client.url == "ws://127.0.0.1:1/b"


async def test_a_successor_refused_keeps_the_old_connection() -> None:
    async with running(Feed(refuse={2: 503})) as feed:
        rec = Recorder(shutdown_at=3)
        client = BinanceStreamClient(feed.url(), rec, BinanceSettings(), name="c")
        async with client_running(client):
            await until(lambda: feed.connections == 2 and len(rec.frames) >= 20)
    assert contiguous(rec.numbers())
    assert client.rotations == 0 and client.reconnects == 0
    assert client.rotation.due_in_s == 30.0  # tried again well before the 24-hour cut


async def test_a_successor_that_dies_before_the_switch_is_abandoned() -> None:
    async def second_closes(index: int, ws: ServerConnection) -> bool:
        if index == 2:
            await ws.close()
            return False
        return True

    async with running(Feed(script=second_closes)) as feed:
        rec = Recorder(shutdown_at=3)
        client = BinanceStreamClient(feed.url(), rec, BinanceSettings(), name="c")
        async with client_running(client):
            await until(lambda: feed.connections == 2 and len(rec.frames) >= 20)
    assert contiguous(rec.numbers())
    assert client.rotations == 0 and client.reconnects == 0


async def test_without_overlap_the_switch_happens_at_the_handover_timeout() -> None:
    async def second_elsewhere(index: int, ws: ServerConnection) -> bool:
        if index == 2:
            await ws.send(orjson.dumps({"stream": "x", "data": {"t": 10_000}}).decode())
            return False  # never the same frames as the old one: no overlap
        return True

    settings = BinanceSettings(handover_timeout_s=0.3)
    async with running(Feed(script=second_elsewhere)) as feed:
        rec = Recorder(shutdown_at=3)
        client = BinanceStreamClient(feed.url(), rec, settings, name="c")
        async with client_running(client):
            await until(lambda: client.rotations == 1)
            await until(lambda: 10_000 in rec.numbers())
    assert client.handover_duplicates == 0


async def test_cancelled_during_the_overlap_leaves_nothing_behind() -> None:
    async def second_quiet(index: int, ws: ServerConnection) -> bool:
        return index != 2

    settings = BinanceSettings(handover_timeout_s=30.0)
    async with running(Feed(script=second_quiet)) as feed:
        rec = Recorder(shutdown_at=3)
        client = BinanceStreamClient(feed.url(), rec, settings, name="c")
        task = asyncio.create_task(client.run())
        await until(lambda: client.phase is Phase.OVERLAPPING)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await until(lambda: not feed.live)  # the server saw both sockets closed
    assert client.phase is Phase.CLOSED and client.rotation.handover is None


async def test_a_silent_successor_is_judged_dead_and_abandoned() -> None:
    async def second_silent(index: int, ws: ServerConnection) -> bool:
        return index != 2

    settings = BinanceSettings(handover_timeout_s=5.0)
    async with running(Feed(script=second_silent)) as feed:
        rec = Recorder(shutdown_at=3)
        client = BinanceStreamClient(
            feed.url(), rec, settings, name="c", silence_allowance=lambda: 0.2
        )
        async with client_running(client):
            await until(lambda: feed.connections == 2 and client.phase is Phase.OVERLAPPING)
            await until(lambda: client.phase is Phase.SERVING)  # long before the 5 s timeout
            await until(lambda: len(rec.frames) >= 20)
    assert contiguous(rec.numbers())
    assert client.rotations == 0 and client.reconnects == 0
    assert client.rotation.due_in_s == 30.0


async def test_a_successor_failing_for_a_bug_raises_it() -> None:
    async def second_binary(index: int, ws: ServerConnection) -> bool:
        if index == 2:
            await ws.send(frame(-1))  # refused, and the refusal handler fails
        return True

    async def broken_sink(raw: bytes, received_at_us: int, reason: str) -> None:
        raise RuntimeError("sink bug")

    settings = BinanceSettings(handover_timeout_s=5.0)
    async with running(Feed(script=second_binary)) as feed:
        client = BinanceStreamClient(
            feed.url(), Recorder(shutdown_at=3), settings, name="c", on_refused=broken_sink
        )
        with pytest.raises(RuntimeError, match="sink bug"):
            await asyncio.wait_for(client.run(), 10)
    assert client.phase is Phase.CLOSED


async def test_cancelled_while_the_successor_connects_leaves_nothing_behind() -> None:
    async with running(Feed(stall={2})) as feed:
        rec = Recorder(shutdown_at=3)
        client = BinanceStreamClient(feed.url(), rec, BinanceSettings(), name="c")
        task = asyncio.create_task(client.run())
        await until(lambda: client.phase is Phase.OPENING and feed.connections == 2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await until(lambda: not feed.live)
    assert client.phase is Phase.CLOSED


async def test_cancelled_while_the_successor_connects_after_the_old_one_died_stops() -> None:
    """The old connection falls silent and is judged dead while its successor's handshake
    hangs; a stop then must end the client. Its reader's failure used to replace the
    cancellation in the clean-up, and the client reconnected instead of stopping (the soak
    test's teardown then waited for it forever)."""
    first_closed = asyncio.Event()

    async def silent_first(index: int, ws: ServerConnection) -> bool:
        if index == 1:
            closing = asyncio.create_task(ws.wait_closed())
            closing.add_done_callback(lambda _: first_closed.set())
        return index > 2  # the first sends nothing; the second never opens (stalled)

    async with running(Feed(script=silent_first, stall={2})) as feed:
        client = BinanceStreamClient(
            feed.url(), Recorder(), BinanceSettings(rotate_after_s=0.05), name="c",
            silence_allowance=lambda: 0.2,
        )  # fmt: skip
        task = asyncio.create_task(client.run())
        await until(lambda: client.phase is Phase.OPENING and feed.connections == 2)
        async with asyncio.timeout(10):
            await first_closed.wait()  # the watchdog aborted the silent old connection
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)
        assert done, "the client did not stop"
        assert task.cancelled()
    assert client.reconnects == 0 and feed.connections == 2
    assert client.phase is Phase.CLOSED


async def test_an_old_connection_cut_before_the_overlap_makes_the_switch_a_reconnect() -> None:
    """Cut while its successor's handshake is still under way: what was sent in between came
    on neither connection, so the streams are told they were reconnected (their windows
    declared, quiet trade streams probed) instead of the switch passing for seamless."""
    first: list[ServerConnection] = []

    async def remember_first(index: int, ws: ServerConnection) -> bool:
        if index == 1:
            first.append(ws)
        return True

    opened: list[int] = []
    async with running(Feed(script=remember_first, stall={2})) as feed:
        rec = Recorder()
        client = BinanceStreamClient(
            feed.url(), rec, BinanceSettings(rotate_after_s=0.2), name="c",
            on_connected=lambda: opened.append(len(rec.frames)),
        )  # fmt: skip
        async with client_running(client):
            await until(lambda: client.phase is Phase.OPENING and feed.connections == 2)
            await first[0].close()  # cut; the successor's handshake is held until released
            await asyncio.sleep(0.2)
            feed.stopping.set()  # the successor opens
            await until(lambda: client.rotations >= 1 and len(rec.frames) > opened[-1] + 3)
    assert len(opened) == 2  # the first connection, then the switch as a reconnect
    assert client.reconnects == 0


async def test_a_switch_waits_for_the_frame_being_handed_on() -> None:
    """A frame handed on when the rotation begins (its handler waiting for Kafka past the
    handover timeout) finishes before the successor's frames are handed on: one at a time."""
    client: BinanceStreamClient | None = None

    class Slow(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.in_flight = self.most_in_flight = 0

        async def __call__(self, raw: bytes, received_at_us: int, received_ns: int) -> None:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                await super().__call__(raw, received_at_us, received_ns)
                if number(raw) == 4:
                    assert client is not None
                    client.retarget(client.url + "/ethusdt@trade")  # rotate now...
                    await asyncio.sleep(1.0)  # ...while this frame is still on its way
            finally:
                self.in_flight -= 1

    settings = BinanceSettings(handover_timeout_s=0.3)
    async with running(Feed()) as feed:
        rec = Slow()
        client = BinanceStreamClient(feed.url(), rec, settings, name="c")
        async with client_running(client):
            await until(lambda: client.rotations == 1 and len(rec.frames) >= 150)
    assert rec.most_in_flight == 1
    assert contiguous(rec.numbers())


async def test_binary_and_oversized_frames_are_refused_and_the_stream_goes_on() -> None:
    async def bad_frames(index: int, ws: ServerConnection) -> bool:
        if index == 1:
            await ws.send(frame(-1))  # bytes: a binary frame
            await ws.send(orjson.dumps({"pad": "x" * (LIMIT * 2)}).decode())  # under the hard cap
            await ws.send("x" * (LIMIT * 5))  # over the hard cap: websockets closes the socket
        return True

    async with running(Feed(script=bad_frames)) as feed:
        rec = Recorder()
        client = BinanceStreamClient(
            feed.url(), rec, BinanceSettings(max_frame_bytes=LIMIT), name="c",
            on_refused=rec.refuse,
        )  # fmt: skip
        async with client_running(client):
            await until(lambda: client.reconnects == 1 and len(rec.frames) >= 3)
    reasons = [reason for _, reason in rec.refused]
    assert reasons[0].startswith("binary frame")
    assert reasons[1].startswith(f"frame of {LIMIT * 2 + 10} bytes")
    assert "closed the connection" in reasons[2]
    assert rec.refused[0][0] == frame(-1)
    assert all(n > 0 for n in rec.numbers())


async def test_refusals_without_a_refusal_handler_are_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def binary_first(index: int, ws: ServerConnection) -> bool:
        await ws.send(frame(-1))
        return True

    async with running(Feed(script=binary_first)) as feed:
        rec = Recorder()
        client = BinanceStreamClient(feed.url(), rec, BinanceSettings(), name="c")
        async with client_running(client):
            await until(lambda: len(rec.frames) >= 2)
    assert -1 not in rec.numbers()
    assert "refused a frame: binary frame" in caplog.text


async def test_server_errors_are_retried_with_backoff_and_4xx_is_fatal() -> None:
    async with running(Feed(refuse={1: 503})) as feed:
        rec = Recorder()
        client = BinanceStreamClient(feed.url(), rec, BinanceSettings(), name="c")
        async with client_running(client):
            await until(lambda: len(rec.frames) >= 2)
        assert client.reconnects == 1

    async with running(Feed(refuse={1: 403})) as feed:
        client = BinanceStreamClient(feed.url(), Recorder(), BinanceSettings(), name="c")
        with pytest.raises(ConfigError, match="HTTP 403"):
            await asyncio.wait_for(client.run(), 10)


async def test_the_attempt_budget_makes_a_reconnect_wait() -> None:
    async with running(Feed(refuse={1: 503})) as feed:
        rec = Recorder()
        # One attempt a second: longer than the first backoff (at most 0.5 s), so the
        # reconnect must wait for the budget.
        attempts = SlidingWindowLimit(1, 1.0)
        client = BinanceStreamClient(
            feed.url(), rec, BinanceSettings(), name="c", attempts=attempts
        )
        started = time.monotonic()
        async with client_running(client):
            await until(lambda: len(rec.frames) >= 2)
    assert time.monotonic() - started >= 0.9
    assert feed.connections == 2 and client.reconnects == 1


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        ("uri", ConfigError),
        ("closed", StreamDisconnectedError),
        ("other", StreamDisconnectedError),
        ("429", UpstreamError),
    ],
)
def test_websocket_errors_are_translated_into_the_tree(raised: str, expected: type) -> None:
    from websockets.datastructures import Headers
    from websockets.exceptions import (
        ConnectionClosedError,
        InvalidStatus,
        InvalidURI,
        ProtocolError,
    )
    from websockets.frames import Close

    errors: dict[str, Exception] = {
        "uri": InvalidURI("nope", "not a ws URL"),
        "closed": ConnectionClosedError(Close(CloseCode.INTERNAL_ERROR, "x"), None),
        "other": ProtocolError("bad"),
        "429": InvalidStatus(Response(429, "Too Many", Headers())),
    }
    with pytest.raises(expected), map_websocket_errors("ws://x"):
        raise errors[raised]
