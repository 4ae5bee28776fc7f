"""The benchmark's feeder: Binance-format combined-stream frames, as fast as a reader reads or paced.

Both pipelines of a benchmark run (the gateway and the reference) read from one feeder process,
so they get the same frames from the same code. It is a few dozen lines of raw WebSocket (RFC 6455
server side: the upgrade, unmasked text frames out, pings answered) on an asyncio protocol rather
than a WebSocket library, so that it writes many frames per system call and stays far faster than
either reader on the same two cores; the simulator is the exchange double for correctness, this
is only a firehose.

Frames follow Binance's spot payloads (docs/binance.md §3, the examples in tests/data/binance/spot):
``aggTrade``, ``trade``, ``depth@100ms`` diffs with ``levels`` bids and asks, ``kline_1m`` and
``ticker``. Every event time ``E`` is the wall-clock millisecond the frame was written, so
event → Kafka latency can be measured in the reader's process from the record alone. Trade and
aggregate-trade ids are contiguous per symbol within the process (shared by its connections).
REST answers only what the gateway asks at start-up and on a hole: ``aggTrades`` and
``historicalTrades`` are empty (nothing to backfill), anything else is 404.

``python -m gateway.benchmark.feed --port 0 [--rate 10000] [--levels 20]`` prints
``{"port": N}`` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import sys
import time
from collections.abc import Callable, Iterator
from itertools import cycle
from urllib.parse import parse_qs, urlsplit

import orjson

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CHUNK = 256
"""Frames per write at full speed: one system call carries many frames."""
TICK_S = 0.002
"""Pacing granularity: a paced feeder writes what is due every 2 ms."""


def accept_key(key: bytes) -> bytes:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.strip() + _GUID).digest())


def ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked, final server frame (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big") + payload


class Market:
    """Per-symbol ids and prices, shared by every connection of the feeder."""

    def __init__(self, levels: int) -> None:
        self.levels = levels
        self.ids: dict[tuple[str, str], int] = {}
        self.tick = 0

    def next_id(self, symbol: str, kind: str) -> int:
        key = (symbol, kind)
        value = self.ids.get(key, 1000) + 1
        self.ids[key] = value
        return value

    def frame(self, stream: str) -> bytes:
        """The next frame of ``stream`` (``<symbol>@<channel>``), combined-stream wrapped."""
        lower, _, channel = stream.partition("@")
        symbol = lower.upper()
        now = int(time.time() * 1000)
        self.tick += 1
        price = f"{100 + self.tick % 97}.{self.tick % 100:02d}000000"
        qty = f"{1 + self.tick % 13}.{self.tick % 1000:03d}00000"
        if channel == "aggTrade":
            a = self.next_id(symbol, "aggTrade")
            data = (
                f'{{"e":"aggTrade","E":{now},"s":"{symbol}","a":{a},"p":"{price}","q":"{qty}",'
                f'"f":{a * 3},"l":{a * 3 + 2},"T":{now},"m":{"true" if a % 2 else "false"},'
                f'"M":true}}'
            )
        elif channel == "trade":
            t = self.next_id(symbol, "trade")
            data = (
                f'{{"e":"trade","E":{now},"s":"{symbol}","t":{t},"p":"{price}","q":"{qty}",'
                f'"T":{now},"m":{"true" if t % 2 else "false"},"M":true}}'
            )
        elif channel.startswith("depth"):
            u = self.next_id(symbol, "depth") * 10
            bids = ",".join(
                f'["{100 - i}.{self.tick % 100:02d}","{qty}"]' for i in range(self.levels)
            )
            asks = ",".join(
                f'["{101 + i}.{self.tick % 100:02d}","{qty}"]' for i in range(self.levels)
            )
            data = (
                f'{{"e":"depthUpdate","E":{now},"s":"{symbol}","U":{u - 9},"u":{u},'
                f'"b":[{bids}],"a":[{asks}]}}'
            )
        elif channel.startswith("kline_"):
            interval = channel.removeprefix("kline_")
            start = now - now % 60_000
            n = self.next_id(symbol, "kline")
            data = (
                f'{{"e":"kline","E":{now},"s":"{symbol}","k":{{"t":{start},"T":{start + 59_999},'
                f'"s":"{symbol}","i":"{interval}","f":{n},"L":{n + 10},"o":"{price}",'
                f'"c":"{price}","h":"{price}","l":"{price}","v":"{qty}","n":11,"x":false,'
                f'"q":"{qty}","V":"{qty}","Q":"{qty}","B":"0"}}}}'
            )
        elif channel == "ticker":
            n = self.next_id(symbol, "ticker")
            data = (
                f'{{"e":"24hrTicker","E":{now},"s":"{symbol}","p":"0.0015","P":"2.50",'
                f'"w":"{price}","x":"{price}","c":"{price}","Q":"{qty}","b":"{price}",'
                f'"B":"{qty}","a":"{price}","A":"{qty}","o":"{price}","h":"{price}",'
                f'"l":"{price}","v":"{qty}","q":"{qty}","O":{now - 86_400_000},"C":{now},'
                f'"F":{n},"L":{n + 100},"n":101}}'
            )
        else:
            raise ValueError(f"the feeder does not serve {channel!r}")
        return f'{{"stream":"{stream}","data":{data}}}'.encode()


class FeedProtocol(asyncio.Protocol):
    """One client: HTTP upgrade, then frames of the requested streams until it goes away."""

    def __init__(self, market: Market, rate_of: Callable[[int], float]) -> None:
        self._market = market
        self._rate_of = rate_of
        self._buffer = b""
        self._upgraded = False
        self._transport: asyncio.Transport | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a TCP transport (uvloop's too)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._task is not None:
            self._task.cancel()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._upgraded:
            head, sep, rest = self._buffer.partition(b"\r\n\r\n")
            if sep:
                self._buffer = rest
                self._request(head)
            return
        self._client_frames()

    def _request(self, head: bytes) -> None:
        assert self._transport is not None
        lines = head.decode("latin-1").split("\r\n")
        target = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
        }
        if "sec-websocket-key" not in headers:
            path = urlsplit(target).path
            body = b"[]" if path.endswith(("/aggTrades", "/historicalTrades")) else b"{}"
            status = b"200 OK" if body == b"[]" else b"404 Not Found"
            self._transport.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
            )  # fmt: skip
            self._transport.close()
            return
        streams = parse_qs(urlsplit(target).query).get("streams", [""])[0].split("/")
        streams = [s for s in streams if s]
        accept = accept_key(headers["sec-websocket-key"].encode())
        self._transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self._upgraded = True
        self._task = asyncio.get_running_loop().create_task(self._feed(streams))

    def _client_frames(self) -> None:
        """Masked client frames: pings are answered, a close is returned and ends the feed."""
        assert self._transport is not None
        while len(self._buffer) >= 2:
            b0, b1 = self._buffer[0], self._buffer[1]
            length, at = b1 & 0x7F, 2
            if length == 126:
                if len(self._buffer) < 4:
                    return
                length, at = int.from_bytes(self._buffer[2:4], "big"), 4
            elif length == 127:
                if len(self._buffer) < 10:
                    return
                length, at = int.from_bytes(self._buffer[2:10], "big"), 10
            masked = b1 & 0x80
            end = at + (4 if masked else 0) + length
            if len(self._buffer) < end:
                return
            mask = self._buffer[at : at + 4] if masked else b"\0\0\0\0"
            raw = self._buffer[end - length : end]
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(raw))
            self._buffer = self._buffer[end:]
            opcode = b0 & 0x0F
            if opcode == 0x9:
                self._transport.write(ws_frame(payload, 0xA))
            elif opcode == 0x8:
                self._transport.write(ws_frame(payload[:2], 0x8))
                self._transport.close()
                return

    async def _feed(self, streams: list[str]) -> None:
        transport, market = self._transport, self._market
        assert transport is not None
        order: Iterator[str] = cycle(streams)
        rate = self._rate_of(len(streams))
        started, sent = time.monotonic(), 0
        while not transport.is_closing():
            if rate > 0:
                await asyncio.sleep(TICK_S)
                due = int((time.monotonic() - started) * rate) - sent
            else:
                await self._writable.wait()
                due = CHUNK
            if due > 0:
                transport.write(b"".join(ws_frame(market.frame(next(order))) for _ in range(due)))
                sent += due
            if rate <= 0:
                await asyncio.sleep(0)  # let the client's pings and close be read


async def serve(port: int, rate: float, levels: int, total_streams: int) -> None:
    """Serve until cancelled; ``rate`` events/s over ``total_streams`` streams (0 = full speed)."""
    market = Market(levels)

    def rate_of(streams: int) -> float:
        # A paced rate is the whole feeder's: each connection carries its streams' share.
        return rate * streams / max(total_streams, streams) if rate > 0 else 0.0

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FeedProtocol(market, rate_of), "127.0.0.1", port)
    sys.stdout.write(orjson.dumps({"port": server.sockets[0].getsockname()[1]}).decode() + "\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.0, help="events/s in all; 0 = full speed")
    parser.add_argument("--levels", type=int, default=20, help="bids and asks per depth diff")
    parser.add_argument("--streams", type=int, default=1, help="streams the rate is spread over")
    args = parser.parse_args(argv)
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover
        runner = asyncio.Runner()
    with runner, contextlib.suppress(KeyboardInterrupt):
        runner.run(serve(args.port, args.rate, args.levels, args.streams))


if __name__ == "__main__":
    main(sys.argv[1:])
