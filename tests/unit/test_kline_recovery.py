"""The kline recovery shell: a kline stream's hole is filled from REST klines, each closed candle
once, and its gap record says whether that worked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from gateway.binance.markets import Market
from gateway.binance.messages import FrameParser
from gateway.errors import RestRequestError
from gateway.metrics import Metrics
from gateway.records.avro import SingleObjectFraming
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, TopicNamer
from gateway.runtime.klines import KlineRecovery
from gateway.runtime.liveness import LivenessMonitor
from gateway.runtime.pipeline import FramePipeline
from gateway.runtime.sequence import BACKFILLED_HEADER
from gateway.settings import BinanceSettings
from tests.continuity_support import RestDouble
from tests.unit.test_pipeline import CATALOG, RecordingSink, decoded

KLINE = "btcusdt@kline_1m"
MINUTE_MS = 60_000


def frame(event_time_ms: int, open_minute: int, *, closed: bool = False) -> bytes:
    t = open_minute * MINUTE_MS
    bar = {
        "t": t, "T": t + MINUTE_MS - 1, "s": "BTCUSDT", "i": "1m", "f": 1, "L": 2, "o": "1",
        "c": "1", "h": "1", "l": "1", "v": "1", "n": 2, "x": closed, "q": "1", "V": "1",
        "Q": "1", "B": "0",
    }  # fmt: skip
    data = {"e": "kline", "E": event_time_ms, "s": "BTCUSDT", "k": bar}
    return orjson.dumps({"stream": KLINE, "data": data})


def row(open_minute: int, price: str = "2") -> list[object]:
    t = open_minute * MINUTE_MS
    return [t, price, price, price, price, "3", t + MINUTE_MS - 1, "6", 4, "1", "2", "0"]


class Klines(RestDouble):
    """Answers every klines request with ``answer(params)`` (or raises what it returns)."""

    def __init__(self, answer: Callable[[dict[str, str]], Any]) -> None:
        self._answer = answer
        self.requests: list[tuple[str, dict[str, str], int]] = []

    async def answer(
        self, path: str, params: dict[str, str], weight: int, headers: dict[str, str] | None
    ) -> Any:
        self.requests.append((path, params, weight))
        answer = self._answer(params)
        if isinstance(answer, BaseException):
            raise answer
        return answer


class Harness:
    """A spot kline stream through the pipeline, with liveness and kline recovery."""

    def __init__(self, rest: Klines, give_up_s: float = 5.0) -> None:
        self.sink, metrics = RecordingSink(), Metrics()
        self.metrics = metrics
        builder = RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer("p"), "gw")
        klines = KlineRecovery(
            {Market.SPOT: rest},  # type: ignore[dict-item]
            builder,
            self.sink,
            metrics,
            give_up_s=give_up_s,
        )
        settings = BinanceSettings()
        self.live = LivenessMonitor(settings, builder, self.sink, metrics, klines=klines)
        self.live.watch(Market.SPOT, [KLINE])
        self.live.subscribed(Market.SPOT, [KLINE], reconnect=False)
        self.pipeline = FramePipeline(
            FrameParser(Market.SPOT),
            builder,
            self.sink,
            metrics,
            connection="c",
            liveness=self.live,
        )

    async def hole(self, before: list[bytes], after: list[bytes]) -> None:
        for raw in before:
            await self.pipeline(raw, 1, 0)
        self.live.subscribed(Market.SPOT, [KLINE], reconnect=True)
        for raw in after:
            await self.pipeline(raw, 2, 0)

    async def gap(self) -> dict[str, Any]:
        """The window's gap record, once the recovery is over."""
        async with asyncio.timeout(10):
            while True:
                await self.live.check()
                gaps = [decoded(r) for r in self.sink.records if r.topic == "p.stream_status"]
                if gaps:
                    [gap] = gaps
                    return gap
                await asyncio.sleep(0.01)

    def gaps_counted(self) -> float:
        counter = self.metrics.stream_gaps.labels("spot", "kline_1m")
        return float(counter.get())

    def backfilled(self) -> list[ProducerRecord]:
        return [r for r in self.sink.records if BACKFILLED_HEADER in r.headers]


async def test_the_candles_that_closed_in_the_hole_are_published_closed_and_once() -> None:
    rest = Klines(lambda params: [row(m) for m in range(4)])
    harness = Harness(rest)
    # Candle 0 closed live before the hole; the hole runs from candle 1 (61 s) to 180.1 s, whose
    # event is candle 2's close (live): only candle 1 is missing.
    await harness.hole(
        [frame(60_100, 0, closed=True), frame(61_000, 1)],
        [frame(180_100, 2, closed=True), frame(181_000, 3)],
    )
    gap = await harness.gap()
    assert gap["status"] == "gap" and gap["recovered"] is True
    assert harness.gaps_counted() == 0  # recovered: not a window lost for good
    assert (gap["window_start_us"].timestamp(), gap["window_end_us"].timestamp()) == (61.0, 180.1)
    [record] = harness.backfilled()
    kline = decoded(record)
    assert record.topic == "p.spot.kline"
    assert kline["open_time_us"].timestamp() == 60.0 and kline["closed"] is True
    assert kline["event_time_us"] == kline["close_time_us"]
    [(path, params, weight)] = rest.requests
    assert (path, weight) == ("/api/v3/klines", 2)
    assert (params["symbol"], params["startTime"], params["endTime"]) == (
        "BTCUSDT",
        "1000",
        "180100",
    )


async def test_rest_failing_past_the_deadline_declares_the_window_not_recovered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rest = Klines(lambda params: RestRequestError("503 from Binance"))
    harness = Harness(rest, give_up_s=0.2)
    await harness.hole([frame(61_000, 1)], [frame(300_000, 5)])
    with caplog.at_level(logging.ERROR):
        gap = await harness.gap()
    assert gap["recovered"] is False
    assert harness.gaps_counted() == 1
    assert harness.backfilled() == []
    assert len(rest.requests) >= 2  # retried before giving up
    assert "the window stays declared, not recovered" in caplog.text


async def test_an_answer_that_is_not_rows_is_retried_and_unusable_rows_are_dead_lettered() -> None:
    answers: list[Any] = [{"code": -1003}, [row(1), row(2, price="two"), ["short"]]]
    rest = Klines(lambda params: answers.pop(0) if len(answers) > 1 else answers[0])
    harness = Harness(rest)
    await harness.hole([frame(61_000, 1)], [frame(200_000, 3)])
    gap = await harness.gap()
    assert gap["recovered"] is True
    assert [decoded(r)["open_time_us"].timestamp() for r in harness.backfilled()] == [60.0]
    [dead] = [decoded(r) for r in harness.sink.records if r.topic == "p.dead_letter"]
    assert dead["stage"] == "rest" and dead["stream"] == KLINE
    assert "klines row 1" in dead["error"] and "klines row 2" in dead["error"]


async def test_a_window_still_being_recovered_at_stop_is_declared_not_recovered() -> None:
    gate = asyncio.Event()

    class Slow(Klines):
        async def answer(
            self, path: str, params: dict[str, str], weight: int, headers: dict[str, str] | None
        ) -> Any:
            await gate.wait()
            return []

    harness = Harness(Slow(lambda params: []))
    await harness.hole([frame(61_000, 1)], [frame(200_000, 3)])
    await asyncio.sleep(0.01)
    await harness.live.flush()
    [gap] = [decoded(r) for r in harness.sink.records if r.topic == "p.stream_status"]
    assert gap["recovered"] is False


def test_only_kline_streams_of_markets_with_rest_are_recovered() -> None:
    rest = Klines(lambda params: [])
    klines = KlineRecovery(
        {Market.SPOT: rest, Market.USDM: rest},  # type: ignore[dict-item]
        RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer("p"), "gw"),
        RecordingSink(),
        Metrics(),
    )
    assert klines.recoverable(Market.SPOT, KLINE)
    assert klines.recoverable(Market.USDM, "btcusdt_perpetual@continuousKline_1m")
    assert not klines.recoverable(Market.COINM, "btcusd_perp@kline_1m")  # backfill off: no REST
    assert not klines.recoverable(Market.SPOT, "btcusdt@kline_1m@+08:00")
    assert not klines.recoverable(Market.SPOT, "btcusdt@ticker")


async def test_a_window_of_a_kind_rest_does_not_serve_is_declared_at_once_recovered_null() -> None:
    harness = Harness(Klines(lambda params: pytest.fail("no REST for tickers")))
    ticker = "btcusdt@ticker"
    harness.live.watch(Market.SPOT, [ticker])
    harness.live.delivered(Market.SPOT, ticker, 1_000_000)
    harness.live.subscribed(Market.SPOT, [ticker], reconnect=True)
    harness.live.delivered(Market.SPOT, ticker, 9_000_000)
    await harness.live.check()
    [gap] = [decoded(r) for r in harness.sink.records if r.topic == "p.stream_status"]
    assert (gap["stream"], gap["recovered"]) == (ticker, None)
