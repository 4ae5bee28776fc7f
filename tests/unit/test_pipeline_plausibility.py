"""Plausibility before trust, through the frame path (issue 13): frame → pipeline → continuity.

Before: one trade 10^6 ids ahead was published, a gap record declared a million ids lost before
they existed, and every later valid trade was dropped as a duplicate; a negative id was dropped
with no dead letter and no log line; an ``E`` of -5 or an hour ahead became the Kafka timestamp.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
import pytest

from gateway.binance.events.trades import Trade
from gateway.binance.markets import Market
from gateway.binance.messages import FrameParser
from gateway.binance.sequence import IdBounds
from gateway.metrics import Metrics
from gateway.records.avro import SingleObjectFraming, decode, read_header
from gateway.records.builder import RecordBuilder
from gateway.records.topics import TopicNamer
from gateway.runtime.pipeline import FramePipeline
from gateway.runtime.sequence import TradeContinuity
from tests.unit.test_continuity_resume import CATALOG, RecordingSink, ScriptedRest

NOW_MS = 1_700_000_000_000


def frame(trade_id: int, event_time_ms: int = NOW_MS) -> bytes:
    return orjson.dumps(
        {"e": "trade", "E": event_time_ms, "s": "BTCUSDT", "t": trade_id, "p": "1.5", "q": "2",
         "T": event_time_ms, "m": False, "M": True}
    )  # fmt: skip


@pytest.fixture
def path() -> tuple[Callable[..., Awaitable[list[tuple[str, object]]]], Metrics]:
    sink = RecordingSink()
    builder = RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer("p"), "gw")
    metrics = Metrics()
    continuity = TradeContinuity(
        Market.SPOT, ScriptedRest(), builder, sink, metrics,  # type: ignore[arg-type]
        plausibility=IdBounds(max_behind=50),  # the settings' 10_000 would need ids that high
    )  # fmt: skip
    continuity.resume({("BTCUSDT", Trade.KIND): 100})
    pipeline = FramePipeline(
        FrameParser(Market.SPOT), builder, sink, metrics, connection="c", continuity=continuity
    )

    async def feed(*frames: bytes) -> list[tuple[str, object]]:
        for raw in frames:
            await pipeline(raw, NOW_MS * 1000, 0)
        out: list[tuple[str, object]] = []
        for record in sink.records:
            header = read_header(record.value)
            assert header.fingerprint is not None
            writer = CATALOG.by_fingerprint(header.fingerprint)
            assert writer is not None
            value = decode(record.value, header, writer)
            if record.topic == "p.dead_letter":
                out.append((value["stage"], value["raw"]))
            elif record.topic == "p.trade_gap":
                out.append(("gap", value["first_missing_id"]))
            else:
                out.append(("trade", value["trade_id"]))
        return out

    return feed, metrics


async def test_an_id_a_million_ahead_is_dead_lettered_and_the_symbol_goes_on(
    path: tuple[Callable[..., Awaitable[list[tuple[str, object]]]], Metrics],
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed, metrics = path
    bad = frame(1_000_101)
    out = await feed(frame(101), bad, frame(102), frame(103))
    assert out == [("trade", 101), ("trade", 102), ("plausibility", bad), ("trade", 103)]
    assert metrics.dead_letters.labels("spot", "plausibility").get() == 1
    assert any("1000101" in r.getMessage() for r in caplog.records)


async def test_a_negative_id_is_dead_lettered_and_logged(
    path: tuple[Callable[..., Awaitable[list[tuple[str, object]]]], Metrics],
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed, _ = path
    bad = frame(-7)
    assert await feed(bad, frame(101)) == [("plausibility", bad), ("trade", 101)]
    assert any("negative id -7" in r.getMessage() for r in caplog.records)


async def test_an_id_far_behind_the_duplicate_window_is_dead_lettered_not_dropped(
    path: tuple[Callable[..., Awaitable[list[tuple[str, object]]]], Metrics],
) -> None:
    feed, _ = path
    bad = frame(5)
    out = await feed(frame(101), frame(101), bad, frame(102))
    assert out == [("trade", 101), ("plausibility", bad), ("trade", 102)]


@pytest.mark.parametrize("event_time_ms", [-5, NOW_MS + 2 * 3600 * 1000, NOW_MS - 3 * 3600 * 1000])
async def test_an_event_time_far_from_the_receive_time_is_dead_lettered(
    path: tuple[Callable[..., Awaitable[list[tuple[str, object]]]], Metrics], event_time_ms: int
) -> None:
    feed, _ = path
    bad = frame(101, event_time_ms)
    assert await feed(bad, frame(101)) == [("plausibility", bad), ("trade", 101)]
