"""The connection checks what it was sent (issue 13), against a real WebSocket server.

Before: a binary frame was parsed as text; a frame naming a stream the connection never asked for
was published as data; a frame over the size limit dropped the socket and was not dead-lettered.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import uvloop
from websockets.asyncio.server import ServerConnection, serve

from gateway.adapters.binance_ws import BinanceStreamClient
from gateway.binance.markets import Market
from gateway.binance.messages import FrameParser
from gateway.metrics import Metrics
from gateway.records.avro import SingleObjectFraming, decode, read_header
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, TopicNamer
from gateway.runtime.pipeline import FramePipeline
from gateway.runtime.shards import streams_of
from gateway.settings import BinanceSettings
from tests.continuity_support import CATALOG, RecordingSink

LIMIT = 64 * 1024


def trade(trade_id: int, stream: str = "btcusdt@trade", pad: int = 0) -> bytes:
    now = int(time.time() * 1000)
    data = {"e": "trade", "E": now, "s": "BTCUSDT", "t": trade_id, "p": "1", "q": "1", "T": now,
            "m": False, "M": True}  # fmt: skip
    if pad:
        data["zz"] = "x" * pad
    return orjson.dumps({"stream": stream, "data": data})


async def test_binary_unsubscribed_and_oversized_frames_are_dead_lettered() -> None:
    await binary_unsubscribed_and_oversized_frames_are_dead_lettered()


def test_the_same_under_uvloop_which_the_gateway_runs_on() -> None:
    # uvloop's transports are not asyncio.Transport: the checked connection must not assume it.
    uvloop.run(binary_unsubscribed_and_oversized_frames_are_dead_lettered())


async def binary_unsubscribed_and_oversized_frames_are_dead_lettered() -> None:
    connections = 0
    done = asyncio.Event()
    too_big = trade(4, pad=LIMIT * 5)  # over websockets' hard cap: closes the connection

    async def handler(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            await ws.send(trade(1).decode())
            await ws.send(trade(2))  # sent as bytes: a binary frame
            await ws.send(trade(3, stream="ethusdt@trade").decode())
            await ws.send(trade(3, pad=LIMIT * 2).decode())  # over the limit, under the cap
            await ws.send(trade(3).decode())
            await ws.send(too_big.decode())
        else:
            await ws.send(trade(5).decode())
        await done.wait()

    async with serve(handler, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        url = f"ws://127.0.0.1:{port}/stream?streams=btcusdt@trade"
        sink = RecordingSink()
        builder = RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer("p"), "gw")
        parser = FrameParser(Market.SPOT, subscribed=streams_of(url))
        pipeline = FramePipeline(parser, builder, sink, Metrics(), connection="c")
        client = BinanceStreamClient(
            url, pipeline, BinanceSettings(max_frame_bytes=LIMIT), name="c",
            on_refused=pipeline.refuse,
        )  # fmt: skip
        task = asyncio.create_task(client.run())

        def got_the_trade_after_the_reconnect() -> bool:
            return any(
                r.topic == "p.spot.trade" and decoded(r)["trade_id"] == 5 for r in sink.records
            )

        try:
            async with asyncio.timeout(20):
                while not got_the_trade_after_the_reconnect():  # noqa: ASYNC110 - a recording sink
                    await asyncio.sleep(0.05)
        finally:
            done.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    out = [(r.topic.rsplit(".", 1)[-1], decoded(r)) for r in sink.records]
    trades = [value["trade_id"] for kind, value in out if kind == "trade"]
    letters = [value for kind, value in out if kind == "dead_letter"]
    assert trades == [1, 3, 5]
    assert [(v["stage"], v["error"].split(":")[0].split(" ")[0]) for v in letters] == [
        ("frame", "binary"),
        ("parse", "stream"),
        ("frame", "frame"),
        ("frame", "a"),
    ]
    assert letters[0]["raw"][:40] == trade(2)[:40]
    assert "ethusdt@trade" in letters[1]["error"]
    assert letters[2]["raw_size"] > LIMIT * 2  # kept whole: under the dead letter's 256 KiB cut
    assert letters[2]["raw"] == trade(3, pad=LIMIT * 2)[:40] + letters[2]["raw"][40:]
    assert "closed the connection" in letters[3]["error"]
    assert client.reconnects == 1


def decoded(record: ProducerRecord) -> dict[str, Any]:
    header = read_header(record.value)
    assert header.fingerprint is not None  # single-object framing, as the builder was given
    schema = CATALOG.by_fingerprint(header.fingerprint)
    assert schema is not None
    return decode(record.value, header, schema)
