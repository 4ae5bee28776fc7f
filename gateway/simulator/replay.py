"""Replay a recorded capture of raw frames at N x speed, so a real capture can be served later.

A capture is JSONL, one frame per line, in any of these forms::

    {"received_at_us": 1700000000123456, "frame": "{\\"e\\":\\"trade\\",...}"}
    {"ts_ms": 1700000000123, "frame": {"stream": "btcusdt@trade", "data": {...}}}
    {"stream": "btcusdt@trade", "data": {...}}          # a bare frame: timed by its "E"

The frame text is sent exactly as recorded (a string frame) or re-encoded (an object). Every
connection to a :class:`ReplayServer` gets the whole capture, paced by the recorded times
divided by ``speed``; a ``/stream?streams=a/b`` connection only gets the combined frames of
those streams. :func:`load_capture` and :func:`schedule` are pure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from gateway.simulator.streams import StreamRequestError, parse_connection_target

logger = logging.getLogger(__name__)

_TIME_KEYS_US = {"received_at_us": 1, "ts_us": 1, "time_us": 1, "ts_ms": 1_000, "ts": 1_000}


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    """One recorded frame: when it arrived (µs), its bytes, and its stream if combined."""

    time_us: int
    data: bytes
    stream: str | None


def parse_line(line: str | bytes, previous_us: int = 0) -> CapturedFrame:
    """One capture line as a frame (untimed lines inherit ``previous_us``).

    Raises:
        ValueError: the line is not a JSON object.
    """
    record = orjson.loads(line)
    if not isinstance(record, dict):
        raise ValueError("a capture line must be a JSON object")
    time_us = None
    for key, factor in _TIME_KEYS_US.items():
        if isinstance(record.get(key), int):
            time_us = record[key] * factor
    frame: Any = record.get("frame", record)
    data = frame.encode() if isinstance(frame, str) else orjson.dumps(frame)
    decoded = _decoded(frame)
    stream = decoded.get("stream") if isinstance(decoded, dict) else None
    if time_us is None:
        time_us = _event_time_us(decoded, previous_us)
    return CapturedFrame(time_us, data, stream if isinstance(stream, str) else None)


def _decoded(frame: Any) -> Any:
    """The frame as JSON, or ``None`` for a recorded frame that is not JSON (kept as is)."""
    if not isinstance(frame, str):
        return frame
    try:
        return orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None


def _event_time_us(frame: Any, previous_us: int) -> int:
    payload = frame.get("data", frame) if isinstance(frame, dict) else None
    event_ms = payload.get("E") if isinstance(payload, dict) else None
    return int(event_ms) * 1_000 if isinstance(event_ms, int) else previous_us


def load_capture(lines: Iterable[str | bytes]) -> list[CapturedFrame]:
    """Every non-blank line of a capture, in file order."""
    frames: list[CapturedFrame] = []
    previous = 0
    for line in lines:
        if line.strip():
            frame = parse_line(line, previous)
            frames.append(frame)
            previous = frame.time_us
    return frames


def read_capture(path: Path) -> list[CapturedFrame]:
    """:func:`load_capture` of a file."""
    with path.open("rb") as lines:
        return load_capture(lines)


def schedule(frames: list[CapturedFrame], speed: float) -> Iterator[tuple[float, CapturedFrame]]:
    """``(seconds after the start, frame)`` at ``speed`` x; time never runs backwards."""
    if not frames:
        return
    start = frames[0].time_us
    latest = 0.0
    for frame in frames:
        latest = max(latest, (frame.time_us - start) / 1e6 / speed)
        yield latest, frame


class ReplayServer:
    """Serves a capture to every connection at ``speed`` x."""

    def __init__(
        self,
        frames: list[CapturedFrame],
        *,
        speed: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._frames, self._speed, self._host, self._port = frames, speed, host, port
        self._server: Server | None = None

    @property
    def url(self) -> str:
        """``ws://host:port``."""
        if self._server is None:
            raise RuntimeError("replay server not started")
        return f"ws://{self._host}:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> ReplayServer:
        self._server = await serve(self._handle, self._host, self._port, compression=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, connection: ServerConnection) -> None:
        wanted: set[str] | None = None
        if connection.request is not None and "streams=" in connection.request.path:
            try:
                wanted = set(parse_connection_target(connection.request.path).streams)
            except StreamRequestError:
                wanted = None
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            for offset, frame in schedule(self._frames, self._speed):
                if wanted is not None and frame.stream is not None and frame.stream not in wanted:
                    continue
                delay = started + offset - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await connection.send(frame.data.decode("utf-8", "replace"))
            await connection.close(1000, "Replay finished")
        except ConnectionClosed:
            pass
        logger.info("replay to one connection finished")
