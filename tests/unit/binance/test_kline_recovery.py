"""Which candles a kline stream's hole lost, and the REST pages that bring them back."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, strategies as st

from gateway.binance.kline_recovery import (
    PAGE_ROWS,
    ClosedKlines,
    KlineSeries,
    KlineWindowFetch,
    klines_weight,
    series_of,
)
from gateway.binance.markets import Market

MINUTE_US = 60_000_000


@dataclass(frozen=True)
class Row:
    open_time_us: int
    close_time_us: int


def candle(index: int, span_us: int = MINUTE_US) -> Row:
    """The index-th candle of a 1m series (close time ``...59999`` ms, as Binance dates it)."""
    return Row(index * span_us, (index + 1) * span_us - 1_000)


def test_kline_streams_name_their_series_and_other_streams_none() -> None:
    assert series_of("btcusdt@kline_1m") == KlineSeries("kline", "BTCUSDT", "1m")
    assert series_of("btcusdt_perpetual@continuousKline_1s") == KlineSeries(
        "continuous_kline", "BTCUSDT", "1s", "PERPETUAL"
    )
    assert series_of("btcusd_next_quarter@continuousKline_1M") == KlineSeries(
        "continuous_kline", "BTCUSD", "1M", "NEXT_QUARTER"
    )
    # A time zone moves the windows off UTC's: declared, not recovered.
    for stream in ("btcusdt@kline_1m@+08:00", "btcusdt@trade", "btcusd@indexPriceKline_1m"):
        assert series_of(stream) is None
    assert KlineSeries("kline", "X", "3m").span_ms == 180_000
    assert KlineSeries("kline", "X", "1w").span_ms == 604_800_000


def test_klines_weigh_what_binance_charges() -> None:
    assert klines_weight(Market.SPOT, 1_000) == 2
    assert [klines_weight(Market.USDM, n) for n in (99, 100, 500, 1_000, 1_001)] == [1, 2, 5, 5, 10]


def test_the_request_reaches_back_one_interval_and_asks_by_pair_for_continuous_klines() -> None:
    series = KlineSeries("continuous_kline", "BTCUSDT", "1m", "PERPETUAL")
    fetch = KlineWindowFetch(Market.USDM, series, 10 * MINUTE_US + 5, 13 * MINUTE_US)
    request = fetch.request()
    assert request is not None
    assert request.path == "/fapi/v1/continuousKlines"
    assert request.params == {
        "pair": "BTCUSDT", "contractType": "PERPETUAL", "interval": "1m",
        "startTime": str(9 * 60_000), "endTime": str(13 * 60_000), "limit": str(PAGE_ROWS),
    }  # fmt: skip
    assert request.weight == 5
    spot = KlineWindowFetch(Market.SPOT, KlineSeries("kline", "ETHUSDT", "1m"), 0, MINUTE_US)
    spot_request = spot.request()
    assert spot_request is not None and spot_request.path == "/api/v3/klines"
    assert spot_request.params["symbol"] == "ETHUSDT"
    with pytest.raises(ValueError, match="spot has no REST continuous_kline"):
        KlineWindowFetch(Market.SPOT, series, 0, 1)


def test_only_candles_that_closed_inside_the_window_are_wanted() -> None:
    # Last event before the hole during candle 10, first after it during candle 13: candles
    # 10, 11 and 12 closed in the hole; 9 closed before it, 13 closes later, live.
    fetch = KlineWindowFetch(
        Market.SPOT, KlineSeries("kline", "BTCUSDT", "1m"), 10 * MINUTE_US + 5, 13 * MINUTE_US + 5
    )
    rows = [candle(i) for i in range(9, 14)]
    assert [rows[i].open_time_us // MINUTE_US for i in fetch.receive_page(rows, len(rows))] == [
        10,
        11,
        12,
    ]
    assert fetch.done and fetch.request() is None


def test_an_empty_window_asks_nothing() -> None:
    series = KlineSeries("kline", "BTCUSDT", "1m")
    assert KlineWindowFetch(Market.SPOT, series, 5, 5).request() is None


def test_a_full_page_asks_for_the_next_from_after_its_last_open_time() -> None:
    fetch = KlineWindowFetch(
        Market.SPOT, KlineSeries("kline", "BTCUSDT", "1s"), 1_000_000, 2_000 * 1_000_000
    )
    page = [candle(i, 1_000_000) for i in range(PAGE_ROWS)]
    fetch.receive_page(page, len(page))
    request = fetch.request()
    assert request is not None
    assert request.params["startTime"] == str((PAGE_ROWS - 1) * 1_000 + 1)


@given(
    count=st.integers(1, 40),
    bounds=st.tuples(st.integers(0, 40 * MINUTE_US), st.integers(0, 40 * MINUTE_US)),
    published=st.sets(st.integers(0, 39)),
    page=st.integers(1, 15),
    overlap=st.integers(0, 3),
)
def test_every_candle_closed_in_the_window_once_and_none_published_before(
    count: int, bounds: tuple[int, int], published: set[int], page: int, overlap: int
) -> None:
    """Whatever the paging (rows repeated across pages included), each candle whose close lies
    strictly inside the window and whose close was not published comes out exactly once."""
    start, end = sorted(bounds)
    fetch = KlineWindowFetch(
        Market.USDM,
        KlineSeries("kline", "BTCUSDT", "1m"),
        start,
        end,
        published=[i * MINUTE_US for i in published],
    )
    candles = [candle(i) for i in range(count)]
    wanted: list[int] = []
    position = 0
    while position < len(candles):
        rows = candles[max(0, position - overlap) : position + page]
        # The page counts as full (more may follow) unless it reaches the end.
        answered = PAGE_ROWS if position + page < len(candles) else len(rows)
        wanted += [rows[i].open_time_us for i in fetch.receive_page(rows, answered)]
        position += page
    expected = [
        c.open_time_us
        for c in candles
        if start < c.close_time_us < end and c.open_time_us // MINUTE_US not in published
    ]
    assert wanted == expected


def test_closed_klines_are_remembered_per_stream_within_a_bound() -> None:
    closed = ClosedKlines(per_stream=2)
    for open_time in (1, 2, 2, 3):
        closed.add(Market.SPOT, "a@kline_1m", open_time)
    closed.add(Market.USDM, "a@kline_1m", 9)
    assert closed.of(Market.SPOT, "a@kline_1m") == {2, 3}
    closed.forget(Market.SPOT, ["a@kline_1m"])
    assert closed.of(Market.SPOT, "a@kline_1m") == frozenset()
    assert closed.of(Market.USDM, "a@kline_1m") == {9}
