"""A client that does not read: the simulated market does not wait for it, and cuts it.

Binance keeps publishing to a client that stopped reading, then drops the connection without a
closing handshake; a client that does not answer pings is closed at the ping deadline
(docs/binance.md §2). The unpaced throughput mode is the one exception: there the market runs as
fast as its readers.
"""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlsplit

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.integration.test_simulator_support import Start, receive, simulator

__all__ = ["simulator"]
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
STREAMS = [f"{s.lower()}@{c}" for s in SYMBOLS for c in ("trade", "aggTrade", "bookTicker")]


def tiny_socket(url: str) -> socket.socket:
    """A connected socket with a small receive buffer, so an idle reader fills up quickly."""
    parts = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname, parts.port))
    return sock


async def test_a_client_that_stops_reading_is_cut_and_the_market_runs_on(simulator: Start) -> None:
    sim = await simulator(
        symbols=SYMBOLS,
        trades_per_second_per_symbol=500,
        send_buffer_bytes=32_768,
        start_paused=False,
    )
    url = sim.combined_url(STREAMS)
    # max_queue=1: websockets stops reading the socket as soon as one message waits unread.
    async with (
        connect(url, sock=tiny_socket(sim.ws_url), max_queue=1) as idle,
        connect(url) as reader,
    ):
        await sim.wait_for_subscribers(2 * len(STREAMS))
        before = sim.trades_generated("BTCUSDT")
        started = time.monotonic()
        # The idle client never calls recv(); the other one reads all the time.
        received = 0
        while not any(c.dropped_slow for c in sim.connections()):
            received += len(await receive(reader, 50))
            assert time.monotonic() - started < 30, "the idle client was never cut"
        elapsed = time.monotonic() - started
        # The market kept its pace (500/s) while the idle client's buffer filled.
        assert sim.trades_generated("BTCUSDT") - before >= 500 * elapsed * 0.5
        assert received > 0
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(idle.recv(), 5)
        assert closed.value.rcvd is None  # dropped, no closing handshake
        await receive(reader, 20)  # the reading client is unaffected
    assert sim.slow_reader_drops == 1


async def test_a_client_that_answers_no_ping_is_closed_at_the_deadline(simulator: Start) -> None:
    sim = await simulator(
        symbols=SYMBOLS[:1],
        trades_per_second_per_symbol=5,
        start_paused=False,
        send_buffer_bytes=None,
        ping_interval_s=0.2,
        ping_timeout_s=0.6,
    )
    async with connect(
        sim.combined_url(STREAMS[:1]), sock=tiny_socket(sim.ws_url), max_queue=1
    ) as idle:
        await sim.wait_for_subscribers(1)
        started = time.monotonic()
        while any(c.is_open for c in sim.connections()):
            await asyncio.sleep(0.05)
            assert time.monotonic() - started < 10, "no pong, yet never closed"
        assert time.monotonic() - started >= 0.6
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(idle.recv(), 5)
    assert sim.slow_reader_drops == 0  # the ping deadline closed it, not the buffer


async def test_unpaced_market_waits_for_its_readers(simulator: Start) -> None:
    sim = await simulator(symbols=SYMBOLS[:1], start_paused=False)
    async with connect(
        sim.combined_url(STREAMS[:1]), sock=tiny_socket(sim.ws_url), max_queue=1
    ) as ws:
        await sim.wait_for_subscribers(1)
        await asyncio.sleep(1.0)  # nobody reads: the buffers fill, then the market waits
        held = sim.trades_generated("BTCUSDT")
        await asyncio.sleep(0.5)
        assert sim.trades_generated("BTCUSDT") == held
        async with asyncio.timeout(10):  # reading lets it go on
            while sim.trades_generated("BTCUSDT") == held:
                await receive(ws, 100)
    assert sim.slow_reader_drops == 0
