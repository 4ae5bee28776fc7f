"""The liveness shell: frames mark their stream, reconnects declare the windows they lost."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson

from gateway.binance.markets import Market
from gateway.binance.messages import FrameParser
from gateway.metrics import Metrics
from gateway.records.avro import SingleObjectFraming
from gateway.records.builder import RecordBuilder
from gateway.records.topics import TopicNamer
from gateway.runtime.liveness import LivenessMonitor, recovered_elsewhere
from gateway.runtime.pipeline import FramePipeline
from gateway.settings import BinanceSettings
from tests.unit.test_pipeline import CATALOG, RecordingSink, decoded


def at(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, UTC)


SETTINGS = BinanceSettings(silent_stream_report_s=0.01)
KLINE, TRADE = "btcusdt@kline_1m", "btcusdt@trade"


def monitor() -> tuple[LivenessMonitor, RecordingSink, Metrics]:
    sink, metrics = RecordingSink(), Metrics()
    builder = RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer("p"), "gw")
    recovered = lambda market, stream: recovered_elsewhere(SETTINGS, market, stream)  # noqa: E731
    return LivenessMonitor(SETTINGS, builder, sink, metrics, recovered=recovered), sink, metrics


def kline_frame(event_time_ms: int) -> bytes:
    kline = {
        "t": 0, "T": 59_999, "s": "BTCUSDT", "i": "1m", "f": 1, "L": 2, "o": "1", "c": "1",
        "h": "1", "l": "1", "v": "1", "n": 2, "x": False, "q": "1", "V": "1", "Q": "1", "B": "0",
    }  # fmt: skip
    data = {"e": "kline", "E": event_time_ms, "s": "BTCUSDT", "k": kline}
    return orjson.dumps({"stream": KLINE, "data": data})


async def test_a_reconnect_declares_the_window_between_the_last_and_the_next_event() -> None:
    live, sink, metrics = monitor()
    live.watch(Market.SPOT, [KLINE, TRADE])
    live.subscribed(Market.SPOT, [KLINE, TRADE], reconnect=False)
    pipeline = FramePipeline(
        FrameParser(Market.SPOT), live._builder, sink, metrics, connection="c", liveness=live
    )
    await pipeline(kline_frame(1_000), 5, 0)
    live.delivered(Market.SPOT, TRADE, 1_500_000)  # trades are recovered by id: not declared
    live.subscribed(Market.SPOT, [KLINE, TRADE], reconnect=True)
    await live.check()
    assert [r.topic for r in sink.records] == ["p.spot.kline"]  # open until the next event
    await pipeline(kline_frame(9_000), 6, 0)
    await live.check()
    [gap] = [decoded(r) for r in sink.records if r.topic == "p.stream_status"]
    assert (gap["stream"], gap["symbol"], gap["status"], gap["reason"]) == (
        KLINE, "BTCUSDT", "gap", "reconnect",
    )  # fmt: skip
    assert (gap["window_start_us"], gap["window_end_us"]) == (at(1_000_000), at(9_000_000))
    assert metrics.stream_gaps.labels("spot", "kline_1m").get() == 1


async def test_a_first_connection_declares_nothing_and_a_hole_never_closed_is_declared_open() -> (
    None
):
    live, sink, _ = monitor()
    live.watch(Market.SPOT, [KLINE])
    live.subscribed(Market.SPOT, [KLINE], reconnect=True)  # nothing delivered before: no hole
    live.delivered(Market.SPOT, KLINE, 1_000_000)
    live.subscribed(Market.SPOT, [KLINE], reconnect=True)
    live.unwatch(Market.SPOT, [KLINE])  # the shard left before the stream spoke again
    await live.check()
    [gap] = [decoded(r) for r in sink.records]
    assert (gap["window_start_us"], gap["window_end_us"]) == (at(1_000_000), None)


async def test_silent_and_resumed_are_reported_once_each() -> None:
    live, sink, metrics = monitor()
    live.watch(Market.SPOT, [KLINE])
    await live.check()
    assert live.silent() == {}
    await asyncio.sleep(0.05)
    await live.check()
    await live.check()
    assert live.silent() == {"spot": [KLINE]}
    live.delivered(Market.SPOT, KLINE, 2_000_000)
    await live.check()
    assert [decoded(r)["status"] for r in sink.records] == ["silent", "resumed"]
    assert metrics.stream_silences.labels("spot", "kline_1m").get() == 1
    assert live.silent() == {}


def test_what_is_recovered_elsewhere() -> None:
    assert recovered_elsewhere(SETTINGS, Market.SPOT, "btcusdt@trade")
    assert recovered_elsewhere(SETTINGS, Market.SPOT, "btcusdt@depth@100ms")
    assert not recovered_elsewhere(SETTINGS, Market.SPOT, "btcusdt@depth5@100ms")
    assert not recovered_elsewhere(SETTINGS, Market.SPOT, KLINE)


async def test_a_released_stream_declares_its_window_open_at_the_end() -> None:
    live, sink, _ = monitor()
    live.watch(Market.SPOT, [KLINE, TRADE])
    live.delivered(Market.SPOT, KLINE, 3_000_000)
    live.delivered(Market.SPOT, TRADE, 3_000_000)  # the next owner resumes trades from Kafka
    live.release(Market.SPOT, [KLINE, TRADE])
    await live.flush()
    [gap] = [decoded(r) for r in sink.records]
    assert (gap["stream"], gap["reason"], gap["window_end_us"]) == (KLINE, "released", None)
    assert gap["window_start_us"] == at(3_000_000)
    assert live.silent() == {}


async def test_a_shard_taken_from_a_crashed_worker_declares_each_window_up_to_its_first_event() -> (
    None
):
    live, sink, _ = monitor()
    live.watch(Market.SPOT, [KLINE, TRADE])
    live.subscribed(Market.SPOT, [KLINE, TRADE], reconnect=False, inherited=True)
    live.delivered(Market.SPOT, TRADE, 4_000_000)  # trades resume from Kafka's last id
    live.delivered(Market.SPOT, KLINE, 5_000_000)
    live.delivered(Market.SPOT, KLINE, 6_000_000)
    await live.check()
    [gap] = [decoded(r) for r in sink.records]
    assert (gap["stream"], gap["status"], gap["reason"]) == (KLINE, "gap", "taken_over")
    # From the previous owner's last record, which this worker never saw, to its first event.
    assert (gap["window_start_us"], gap["window_end_us"]) == (None, at(5_000_000))
    live.subscribed(Market.SPOT, [KLINE, TRADE], reconnect=False)  # an ordinary first connection
    live.delivered(Market.SPOT, KLINE, 7_000_000)
    await live.check()
    assert len(sink.records) == 1


def test_the_24h_activity_prior_sets_a_trade_streams_allowance_before_it_traded() -> None:
    live, _, _ = monitor()
    live.watch(Market.SPOT, [TRADE])
    core = live._markets[Market.SPOT]
    now = core._streams[TRADE].watched_s
    # Nothing known of the symbol: only max_quiet_s (1 h) of silence is reported.
    assert core.allowance_s(TRADE, now) == SETTINGS.max_quiet_s
    live.set_activity(Market.SPOT, {"BTCUSDT": 1.0, "ETHUSDT": 5.0})
    live.set_activity(Market.COINM, {"BTCUSD_PERP": 1.0})  # a market not streamed: ignored
    # 20 mean intervals of one trade a second, at least stale_after_s and first_report_s.
    expected = max(SETTINGS.activity_tolerance, SETTINGS.stale_after_s,
                   SETTINGS.silent_stream_report_s)  # fmt: skip
    assert core.allowance_s(TRADE, now) == expected
