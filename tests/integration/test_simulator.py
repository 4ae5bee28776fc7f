"""The simulator over real sockets: what a client receives is exactly what the history recorded."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from gateway.simulator import ExchangeSimulator, TimeUnit
from gateway.simulator.config import simulated_symbols
from tests.integration.conftest import SimulatorFactory, started_simulators

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
# Paused, as fast as the reader allows once resumed, no pings unless a test wants them.
QUIET = {
    "symbols": SYMBOLS,
    "start_paused": True,
    "trades_per_second_per_symbol": None,
    "ping_interval_s": None,
    "close_timeout_s": 0.5,
}
TIMEOUT_S = 5.0

Start = SimulatorFactory


@pytest.fixture
async def simulator() -> AsyncIterator[Start]:
    """Start simulators (``QUIET`` plus overrides); all are stopped after the test."""
    async with started_simulators(QUIET) as start:
        yield start


def fake_clock(start_us: int = 1_700_000_000_000_000, step_us: int = 250) -> Callable[[], int]:
    return itertools.count(start_us, step_us).__next__


async def receive(ws: ClientConnection, count: int) -> list[Any]:
    """Exactly ``count`` frames, decoded."""
    async with asyncio.timeout(TIMEOUT_S):
        return [orjson.loads(await ws.recv()) for _ in range(count)]


async def assert_nothing_more(ws: ClientConnection) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await ws.recv()


async def request(ws: ClientConnection, message: dict[str, Any]) -> Any:
    await ws.send(orjson.dumps(message).decode())
    return orjson.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S))


def close_of(error: ConnectionClosed) -> tuple[int, str]:
    """The code and reason of the close frame the simulator sent."""
    assert error.rcvd is not None
    return error.rcvd.code, error.rcvd.reason


def frames_sent(sim: ExchangeSimulator) -> int:
    return sum(connection.frames_sent for connection in sim.connections())


# --- streams ---------------------------------------------------------------------------------


async def test_combined_stream_carries_exactly_n_trades_per_symbol_as_recorded(
    simulator: Start,
) -> None:
    sim = await simulator(seed=5)
    names = sim.stream_names()
    async with connect(sim.combined_url(names)) as ws:
        await sim.wait_for_subscribers(names, timeout_s=TIMEOUT_S)
        sim.run_for(trades_per_symbol=300)
        await sim.wait_idle(timeout_s=TIMEOUT_S)
        frames = await receive(ws, frames_sent(sim))
        await assert_nothing_more(ws)

    by_stream: dict[str, list[Any]] = defaultdict(list)
    for frame in frames:
        assert set(frame) == {"stream", "data"}
        by_stream[frame["stream"]].append(frame["data"])
    for symbol in SYMBOLS:
        trades = by_stream[f"{symbol.lower()}@trade"]
        assert len(trades) == sim.trades_generated(symbol) == 300
        assert trades == sim.history.trades(symbol)
        assert by_stream[f"{symbol.lower()}@aggTrade"] == sim.history.agg_trades(symbol)
        ids = [trade["t"] for trade in trades]
        assert ids == list(range(ids[0], ids[0] + 300))


async def test_raw_stream_sends_bare_payloads_in_microseconds_on_request(simulator: Start) -> None:
    sim = await simulator()
    async with connect(sim.raw_url(["ethusdt@trade"], TimeUnit.MICROSECOND)) as ws:
        await sim.wait_for_subscribers(["ethusdt@trade"], timeout_s=TIMEOUT_S)
        sim.run_for(trades_per_symbol=50)
        await sim.wait_idle(timeout_s=TIMEOUT_S)
        frames = await receive(ws, 50)
        await assert_nothing_more(ws)
    assert frames == sim.history.trade_payloads("ETHUSDT", TimeUnit.MICROSECOND)
    assert frames[0]["T"] // 1_000 == sim.history.trades("ETHUSDT")[0]["T"]


async def test_connections_with_different_settings_get_the_same_events(simulator: Start) -> None:
    sim = await simulator(symbols=("BTCUSDT",))
    async with (
        connect(sim.raw_url(["btcusdt@aggTrade"])) as raw,
        connect(sim.combined_url(["btcusdt@aggTrade"], TimeUnit.MICROSECOND)) as combined,
    ):
        await sim.wait_for_subscribers(2, timeout_s=TIMEOUT_S)
        sim.run_for(trades_per_symbol=40)
        await sim.wait_idle(timeout_s=TIMEOUT_S)
        count = len(sim.history.agg_trades("BTCUSDT"))
        raw_frames, combined_frames = await receive(raw, count), await receive(combined, count)
    assert raw_frames == sim.history.agg_trades("BTCUSDT")
    assert [f["data"] for f in combined_frames] == sim.history.agg_trade_payloads(
        "BTCUSDT", TimeUnit.MICROSECOND
    )


async def test_same_seed_and_clock_give_the_same_market(simulator: Start) -> None:
    histories = []
    for _ in range(2):
        sim = await simulator(seed=42, clock_us=fake_clock())
        sim.run_for(trades_per_symbol=100)
        await sim.wait_idle(timeout_s=TIMEOUT_S)
        histories.append({s: (sim.history.trades(s), sim.history.agg_trades(s)) for s in SYMBOLS})
    assert histories[0] == histories[1]


async def test_a_paced_simulator_trades_at_its_rate(simulator: Start) -> None:
    sim = await simulator(
        symbols=("BTCUSDT",), trades_per_second_per_symbol=200.0, max_trades_per_symbol=60
    )
    started = time.monotonic()
    sim.resume()
    await sim.wait_idle(timeout_s=TIMEOUT_S)
    # 60 trades at 200/s: about 0.3 s (the first fill is due at once, a fill holds up to 4).
    assert 0.2 <= time.monotonic() - started < 2.0
    assert sim.trades_generated("BTCUSDT") == 60


async def test_an_endless_unpaced_market_waits_for_a_reader(simulator: Start) -> None:
    sim = await simulator(start_paused=False)
    await sim.wait_idle(timeout_s=TIMEOUT_S)
    assert sim.trades_generated("BTCUSDT") == 0
    # max_queue=None: keep reading while closing, or the close reply waits behind the flood.
    async with connect(sim.raw_url(["btcusdt@trade"]), max_queue=None) as ws:
        assert [frame["s"] for frame in await receive(ws, 10)] == ["BTCUSDT"] * 10
        sim.pause()


async def test_a_reader_that_stops_reading_stalls_generation_without_losing_anything(
    simulator: Start,
) -> None:
    sim = await simulator(symbols=("BTCUSDT",), history_max_per_symbol=1_000_000)
    async with connect(sim.raw_url(["btcusdt@trade"]), max_queue=4) as ws:
        await sim.wait_for_subscribers(1, timeout_s=TIMEOUT_S)
        sim.resume()
        # Nobody reads: once the socket buffers fill up, the trading loop must stop.
        async with asyncio.timeout(TIMEOUT_S):
            while True:
                before = sim.trades_generated("BTCUSDT")
                await asyncio.sleep(0.2)
                if sim.trades_generated("BTCUSDT") == before:
                    break
        sim.pause()
        generated = sim.trades_generated("BTCUSDT")
        frames: list[Any] = []
        async with asyncio.timeout(TIMEOUT_S * 2):
            while len(frames) < generated:
                frames.append(orjson.loads(await ws.recv()))
    assert frames == sim.history.trades("BTCUSDT")


# --- control messages -----------------------------------------------------------------------


async def test_subscribe_list_and_set_property_on_a_live_connection(simulator: Start) -> None:
    sim = await simulator(symbols=("BTCUSDT",), max_incoming_messages_per_s=None)
    async with connect(f"{sim.ws_url}/ws") as ws:
        assert await request(
            ws, {"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 1}
        ) == {
            "result": None,
            "id": 1,
        }
        assert await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": "a1"}) == {
            "result": ["btcusdt@aggTrade"],
            "id": "a1",
        }
        sim.run_for(trades_per_symbol=8)
        await sim.wait_idle(timeout_s=TIMEOUT_S)
        raw = await receive(ws, len(sim.history.agg_trades("BTCUSDT")))
        assert raw == sim.history.agg_trades("BTCUSDT")

        assert await request(
            ws, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 2}
        ) == {
            "result": None,
            "id": 2,
        }
        assert await request(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 3}) == {
            "result": True,
            "id": 3,
        }
        before = len(raw)
        sim.run_for(trades_per_symbol=8)
        await sim.wait_idle(timeout_s=TIMEOUT_S)
        wrapped = await receive(ws, len(sim.history.agg_trades("BTCUSDT")) - before)
        assert wrapped == [
            {"stream": "btcusdt@aggTrade", "data": data}
            for data in sim.history.agg_trades("BTCUSDT")[before:]
        ]


async def test_more_than_five_messages_a_second_closes_the_connection(simulator: Start) -> None:
    sim = await simulator()
    async with connect(f"{sim.ws_url}/ws") as ws:
        for request_id in range(6):
            await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": request_id}).decode())
        replies = [orjson.loads(await ws.recv()) for _ in range(5)]
        assert [reply["id"] for reply in replies] == [0, 1, 2, 3, 4]
        with pytest.raises(ConnectionClosedError) as closed:
            await ws.recv()
    assert close_of(closed.value) == (1008, "Too many requests")


async def test_an_oversized_message_closes_the_connection(simulator: Start) -> None:
    sim = await simulator()
    async with connect(f"{sim.ws_url}/ws") as ws:
        await ws.send("x" * 5_000)
        with pytest.raises(ConnectionClosedError) as closed:
            await ws.recv()
    assert close_of(closed.value)[0] == 1009


# --- limits and refusals --------------------------------------------------------------------


async def test_1024_streams_are_accepted_and_the_1025th_closes_the_connection(
    simulator: Start,
) -> None:
    sim = await simulator(symbols=simulated_symbols(513), max_incoming_messages_per_s=None)
    names = sim.stream_names()
    async with connect(f"{sim.ws_url}/ws") as ws:
        # Small batches: a control message must fit in 4096 bytes.
        for request_id, first in enumerate(range(0, 1024, 128)):
            reply = await request(
                ws, {"method": "SUBSCRIBE", "params": names[first : first + 128], "id": request_id}
            )
            assert reply == {"result": None, "id": request_id}
        listed = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 99})
        assert listed["result"] == names[:1024]
        await ws.send(
            orjson.dumps({"method": "SUBSCRIBE", "params": [names[1024]], "id": 100}).decode()
        )
        with pytest.raises(ConnectionClosedError) as closed:
            await ws.recv()
    assert close_of(closed.value) == (1008, "Too many streams: 1025 > 1024")


async def test_a_url_with_1025_streams_is_too_long(simulator: Start) -> None:
    sim = await simulator()
    names = [f"s{i:04d}usdt@trade" for i in range(1025)]
    with pytest.raises(InvalidStatus) as refused:
        async with connect(sim.combined_url(names)):
            pass
    assert refused.value.response.status_code == 414


async def test_an_unknown_stream_closes_the_connection(simulator: Start) -> None:
    sim = await simulator()
    async with connect(sim.combined_url(["btcusdt@trade", "xyzusdt@trade"])) as ws:
        with pytest.raises(ConnectionClosedError) as closed:
            await ws.recv()
    assert close_of(closed.value) == (
        1008,
        "Invalid stream name xyzusdt@trade",
    )


async def test_unknown_streams_can_be_accepted_silently_like_binance_reportedly_does(
    simulator: Start,
) -> None:
    sim = await simulator(reject_unknown_streams=False)
    async with connect(sim.combined_url(["xyzusdt@trade", "btcusdt@trade"])) as ws:
        listed = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
        assert listed["result"] == ["xyzusdt@trade", "btcusdt@trade"]


async def test_an_unknown_path_is_not_found(simulator: Start) -> None:
    sim = await simulator()
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{sim.ws_url}/streams?streams=btcusdt@trade"):
            pass
    assert refused.value.response.status_code == 404


async def test_connections_are_cut_after_their_lifetime(simulator: Start) -> None:
    sim = await simulator(connection_lifetime_s=0.3)
    async with connect(sim.raw_url(["btcusdt@trade"])) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), TIMEOUT_S)
    assert close_of(closed.value)[0] == 1001
    assert sim.connections()[0].is_open is False


async def test_waiting_for_subscribers_times_out(simulator: Start) -> None:
    sim = await simulator()
    with pytest.raises(TimeoutError):
        await sim.wait_for_subscribers(["btcusdt@trade"], timeout_s=0.1)


# --- keepalive -------------------------------------------------------------------------------


class RawClient:
    """A WebSocket client on a bare socket, driving websockets' sans-I/O ``ClientProtocol``.

    websockets' asyncio client always answers pings; here the test decides whether the pongs the
    protocol prepares are sent or dropped.
    """

    def __init__(
        self, protocol: ClientProtocol, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.protocol, self._reader, self._writer = protocol, reader, writer

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str) -> AsyncIterator[RawClient]:
        uri = parse_uri(url)
        protocol = ClientProtocol(uri)
        reader, writer = await asyncio.open_connection(uri.host, uri.port)
        try:
            protocol.send_request(protocol.connect())
            writer.write(b"".join(protocol.data_to_send()))
            while protocol.state is State.CONNECTING:
                protocol.receive_data(await reader.read(65_536))
            assert protocol.state is State.OPEN
            protocol.events_received()  # the handshake response
            yield cls(protocol, reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def listen(self, seconds: float, *, answer_pings: bool) -> list[Frame]:
        """Frames received within ``seconds`` or until the server hangs up."""
        frames: list[Frame] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while data := await self._reader.read(65_536):
                    self.protocol.receive_data(data)
                    frames += [e for e in self.protocol.events_received() if isinstance(e, Frame)]
                    outgoing = b"".join(self.protocol.data_to_send())  # pongs, close replies
                    if answer_pings:
                        self._writer.write(outgoing)
        return frames


async def test_a_client_that_answers_pings_stays_connected(simulator: Start) -> None:
    sim = await simulator(ping_interval_s=0.1, ping_timeout_s=0.3)
    async with RawClient.connect(sim.raw_url(["btcusdt@trade"])) as client:
        frames = await client.listen(0.7, answer_pings=True)  # over twice the pong timeout
    pings = [frame for frame in frames if frame.opcode is Opcode.PING]
    assert len(pings) >= 3
    assert client.protocol.close_rcvd is None


async def test_a_client_that_does_not_pong_is_disconnected(simulator: Start) -> None:
    sim = await simulator(ping_interval_s=0.1, ping_timeout_s=0.3)
    async with RawClient.connect(sim.raw_url(["btcusdt@trade"])) as client:
        started = time.monotonic()
        frames = await client.listen(TIMEOUT_S, answer_pings=False)
        elapsed = time.monotonic() - started
    assert [frame.opcode for frame in frames] == [Opcode.PING, Opcode.CLOSE]
    assert client.protocol.close_rcvd is not None and client.protocol.close_rcvd.code == 1011
    assert 0.3 <= elapsed < 2.0


# --- REST ------------------------------------------------------------------------------------


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get(http: aiohttp.ClientSession, url: str, **params: Any) -> tuple[int, Any, int]:
    async with http.get(url, params=params) as response:
        return response.status, await response.json(), int(response.headers["X-MBX-USED-WEIGHT-1M"])


async def test_rest_24h_tickers_count_each_symbols_trades(
    simulator: Start, http: aiohttp.ClientSession
) -> None:
    sim = await simulator(clock_us=fake_clock())
    sim.run_for(trades_per_symbol=40)
    await sim.wait_idle(timeout_s=TIMEOUT_S)
    status, body, weight = await get(http, f"{sim.rest_url}/api/v3/ticker/24hr")
    assert status == 200 and weight == 80  # every symbol: docs/binance.md §7
    counts = {row["symbol"]: row["count"] for row in body}
    assert counts == {s: len(sim.history.trades(s)) for s in sim.history.symbols}
    _, one, weight = await get(http, f"{sim.rest_url}/api/v3/ticker/24hr", symbol="ETHUSDT")
    assert weight == 80 + 2
    assert one["count"] == counts["ETHUSDT"]
    assert one["lastId"] == sim.history.trades("ETHUSDT")[-1]["t"]


async def test_rest_agg_trades_from_an_id_return_the_recorded_range(
    simulator: Start, http: aiohttp.ClientSession
) -> None:
    sim = await simulator(clock_us=fake_clock())
    sim.run_for(trades_per_symbol=400)
    await sim.wait_idle(timeout_s=TIMEOUT_S)
    recorded = sim.history.agg_trades("ETHUSDT")
    from_id = recorded[10]["a"]

    status, body, weight = await get(
        http, f"{sim.rest_url}/api/v3/aggTrades", symbol="ETHUSDT", fromId=from_id, limit=25
    )
    assert status == 200 and weight == 4
    assert body == [
        {k: v for k, v in agg.items() if k not in ("e", "E", "s")} for agg in recorded[10:35]
    ]

    _, latest, weight = await get(http, f"{sim.rest_url}/api/v3/aggTrades", symbol="ETHUSDT")
    assert weight == 8  # the same minute: weights add up
    assert [agg["a"] for agg in latest] == [agg["a"] for agg in recorded[-500:]]

    start, end = recorded[20]["T"], recorded[30]["T"]
    _, window, _ = await get(
        http, f"{sim.rest_url}/api/v3/aggTrades", symbol="ETHUSDT", startTime=start, endTime=end
    )
    assert window and all(start <= agg["T"] <= end for agg in window)
    assert [agg["a"] for agg in window] == [a["a"] for a in recorded if start <= a["T"] <= end]

    async with http.get(
        f"{sim.rest_url}/api/v3/aggTrades",
        params={"symbol": "ETHUSDT", "fromId": from_id, "limit": 1},
        headers={"X-MBX-TIME-UNIT": "MICROSECOND"},
    ) as response:
        (micro,) = await response.json()
    assert micro["T"] == sim.history.agg_trade_payloads("ETHUSDT", TimeUnit.MICROSECOND)[10]["T"]


async def test_rest_trades_and_historical_trades(
    simulator: Start, http: aiohttp.ClientSession
) -> None:
    sim = await simulator(clock_us=fake_clock())
    sim.run_for(trades_per_symbol=30)
    await sim.wait_idle(timeout_s=TIMEOUT_S)
    recorded = sim.history.trades("BTCUSDT")

    _, recent, weight = await get(http, f"{sim.rest_url}/api/v3/trades", symbol="BTCUSDT", limit=5)
    assert weight == 25
    assert [t["id"] for t in recent] == [t["t"] for t in recorded[-5:]]
    assert [(t["price"], t["qty"], t["time"]) for t in recent] == [
        (t["p"], t["q"], t["T"]) for t in recorded[-5:]
    ]

    _, historical, _ = await get(
        http,
        f"{sim.rest_url}/api/v3/historicalTrades",
        symbol="BTCUSDT",
        fromId=recorded[3]["t"],
        limit=2,
    )
    assert [t["id"] for t in historical] == [recorded[3]["t"], recorded[4]["t"]]


async def test_rest_exchange_info_ping_and_time(
    simulator: Start, http: aiohttp.ClientSession
) -> None:
    clock = fake_clock()
    sim = await simulator(clock_us=clock)
    status, info, weight = await get(http, f"{sim.rest_url}/api/v3/exchangeInfo")
    assert status == 200 and weight == 20
    assert [
        (s["symbol"], s["status"], s["baseAsset"], s["quoteAsset"]) for s in info["symbols"]
    ] == [
        ("BTCUSDT", "TRADING", "BTC", "USDT"),
        ("ETHUSDT", "TRADING", "ETH", "USDT"),
        ("BNBUSDT", "TRADING", "BNB", "USDT"),
    ]
    _, one, _ = await get(http, f"{sim.rest_url}/api/v3/exchangeInfo", symbol="ETHUSDT")
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]
    assert (await get(http, f"{sim.rest_url}/api/v3/ping"))[1] == {}
    _, server_time, _ = await get(http, f"{sim.rest_url}/api/v3/time")
    assert server_time["serverTime"] // 1_000 == 1_700_000_000  # milliseconds of the fake clock


async def test_rest_refusals_look_like_binances(
    simulator: Start, http: aiohttp.ClientSession
) -> None:
    sim = await simulator()
    status, body, weight = await get(http, f"{sim.rest_url}/api/v3/aggTrades", symbol="NOPEUSDT")
    assert (status, body["code"], weight) == (400, -1121, 4)
    status, body, _ = await get(http, f"{sim.rest_url}/api/v3/aggTrades")
    assert (status, body["code"]) == (400, -1102)
    status, body, _ = await get(
        http, f"{sim.rest_url}/api/v3/aggTrades", symbol="BTCUSDT", limit="ten"
    )
    assert (status, body["code"]) == (400, -1100)
