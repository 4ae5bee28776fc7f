"""Per-stream liveness: fixed cadences, activity-paced streams, quiet symbols, never-served names."""

from __future__ import annotations

import pytest

from gateway.binance.liveness import LivenessPolicy, Pace, StreamLiveness, pace_of, symbol_of

POLICY = LivenessPolicy(
    tolerance=10, activity_tolerance=20, min_silence_s=5, first_report_s=30, max_quiet_s=600
)


@pytest.mark.parametrize(
    ("stream", "futures", "pace", "cadence"),
    [
        ("btcusdt@kline_1m", False, Pace.FIXED, 2.0),
        ("btcusdt@kline_1s", False, Pace.FIXED, 1.0),
        ("btcusdt@kline_1h@+08:00", False, Pace.FIXED, 2.0),
        ("btcusdt@kline_1m", True, Pace.FIXED, 0.25),
        ("btcusdt@ticker", False, Pace.FIXED, 1.0),
        ("btcusdt@ticker", True, Pace.FIXED, 2.0),
        ("btcusdt@ticker_1h", False, Pace.FIXED, 1.0),
        ("btcusdt@depth20@100ms", False, Pace.FIXED, 0.1),
        ("btcusdt@markPrice@1s", True, Pace.FIXED, 1.0),
        ("btcusdt@markPrice", True, Pace.FIXED, 3.0),
        ("!markPrice@arr@1s", True, Pace.FIXED, 1.0),
        ("!bookTicker", True, Pace.FIXED, 5.0),
        ("btcusdt@trade", False, Pace.ACTIVITY, None),
        ("btcusdt@depth@100ms", False, Pace.ACTIVITY, None),
        ("btcusdt@bookTicker", False, Pace.ACTIVITY, None),
        ("btcusdt@forceOrder", True, Pace.UNJUDGED, None),
        ("!contractInfo", True, Pace.UNJUDGED, None),
        ("btcusdt@blockTrade", False, Pace.UNJUDGED, None),
    ],
)
def test_pace_follows_the_documented_update_speed(
    stream: str, futures: bool, pace: Pace, cadence: float
) -> None:
    assert pace_of(stream, futures=futures) == (pace, cadence)


def test_symbol_of() -> None:
    assert symbol_of("btcusdt@kline_1m") == "BTCUSDT"
    assert symbol_of("!miniTicker@arr") is None


def test_a_fixed_stream_is_silent_after_its_tolerance_and_resumes() -> None:
    live = StreamLiveness(POLICY, futures=False)
    live.watch(["btcusdt@kline_1m"], 0.0)
    live.delivered("btcusdt@kline_1m", 1.0)
    assert live.check(20.9) == []  # 10 cadences of 2 s after the last event
    [silence] = live.check(21.1)
    assert (silence.stream, silence.last_event_s, silence.allowance_s) == (
        "btcusdt@kline_1m", 1.0, 20.0,
    )  # fmt: skip
    assert live.check(30.0) == []  # reported once
    assert live.silent() == ["btcusdt@kline_1m"]
    resumed = live.delivered("btcusdt@kline_1m", 31.0)
    assert resumed is not None and resumed.resumed
    assert live.silent() == []


def test_a_fixed_stream_never_served_is_reported_after_first_report_s() -> None:
    live = StreamLiveness(POLICY, futures=False)
    live.watch(["btcusdt@kline_1m", "btcusdt@trade"], 0.0)
    assert live.check(29.0) == []
    [silence] = live.check(31.0)
    assert (silence.stream, silence.last_event_s) == ("btcusdt@kline_1m", None)


def test_a_trade_stream_never_served_is_reported_once_its_symbol_is_seen_trading() -> None:
    live = StreamLiveness(POLICY, futures=False)
    live.watch(["btcusdt@trade", "btcusdt@aggTrade"], 0.0)
    assert live.check(40.0) == []  # nothing known of BTCUSDT: it may be quiet
    for i in range(500):  # its aggregate trades show 1 trade a second
        live.delivered("btcusdt@aggTrade", float(i))
    # 20 mean intervals = 20 s since subscription, at least first_report_s (30 s)
    assert [s.stream for s in live.check(500.0)] == ["btcusdt@trade"]


def test_a_prior_lets_a_never_served_trade_stream_be_judged() -> None:
    live = StreamLiveness(POLICY, futures=False)
    live.set_activity("BTCUSDT", 1.0)
    live.watch(["btcusdt@trade"], 0.0)
    assert live.check(29.0) == []
    assert [s.stream for s in live.check(31.0)] == ["btcusdt@trade"]


def test_activity_streams_expect_what_the_symbol_trades() -> None:
    live = StreamLiveness(POLICY, futures=False)
    live.watch(["btcusdt@trade", "btcusdt@bookTicker"], 0.0)
    for i in range(100):  # 10 trades per second for 10 s
        live.delivered("btcusdt@trade", i / 10)
    live.delivered("btcusdt@bookTicker", 0.5)
    # 10/s → mean 0.1 s → 20 intervals = 2 s, raised to the 5 s floor; the book ticker is
    # judged on the symbol's trades.
    assert live.allowance_s("btcusdt@trade", 10.0) == pytest.approx(5.0)
    assert [s.stream for s in live.check(10.0)] == ["btcusdt@bookTicker"]


def test_a_quiet_symbol_is_allowed_its_quiet_and_a_dead_one_is_caught() -> None:
    live = StreamLiveness(POLICY, futures=False)
    live.watch(["dogeusdt@trade"], 0.0)
    for t in range(0, 1000, 10):  # a trade every 10 s
        live.delivered("dogeusdt@trade", float(t))
    assert live.allowance_s("dogeusdt@trade", 1000.0) == pytest.approx(200.0)  # 20 x 10 s
    assert live.check(1150.0) == []  # 160 s of quiet: within 20 x 11.5 s
    assert [s.stream for s in live.check(1400.0)] == ["dogeusdt@trade"]  # 410 s > 280 s


def test_too_few_trades_say_nothing_of_the_rate() -> None:
    live = StreamLiveness(POLICY, futures=False)
    live.watch(["dogeusdt@trade"], 0.0)
    for t in range(0, 100, 10):
        live.delivered("dogeusdt@trade", float(t))
    assert live.allowance_s("dogeusdt@trade", 100.0) == POLICY.max_quiet_s


def test_a_symbol_too_quiet_to_judge_is_not_judged() -> None:
    live = StreamLiveness(POLICY, futures=False)
    live.watch(["rareusdt@trade"], 0.0)
    live.set_activity("RAREUSDT", 10 / 86_400)  # ten trades a day
    assert live.allowance_s("rareusdt@trade", 0.0) is None
    assert live.check(10_000.0) == []


def test_a_symbol_that_did_not_trade_in_24h_is_judged_like_an_unknown_one() -> None:
    live = StreamLiveness(POLICY, futures=False)
    streams = ["newusdt@trade", "newusdt@aggTrade"]
    live.watch(streams, 0.0)
    live.set_activity("NEWUSDT", 0.0)  # the 24 h ticker counted no trade (a new listing)
    assert live.allowance_s("newusdt@trade", 0.0) == POLICY.max_quiet_s
    assert live.connection_allowance_s(streams, 0.0) == POLICY.max_quiet_s
    assert live.check(100.0) == []


def test_unjudged_streams_are_never_reported() -> None:
    live = StreamLiveness(POLICY, futures=True)
    live.watch(["btcusdt@forceOrder"], 0.0)
    assert live.check(1e6) == []


def test_connection_allowance_is_its_most_demanding_stream() -> None:
    live = StreamLiveness(POLICY, futures=False)
    streams = ["dogeusdt@trade", "dogeusdt@kline_1m"]
    live.watch(streams, 0.0)
    for t in range(0, 1000, 10):
        live.delivered("dogeusdt@trade", float(t))
        live.delivered("dogeusdt@kline_1m", float(t))
    assert live.connection_allowance_s(streams, 1000.0) == 20.0
    assert live.connection_allowance_s(["dogeusdt@trade"], 1000.0) == pytest.approx(200.0)
    assert live.connection_allowance_s(["x@forceOrder"], 1000.0) is None


def test_a_connection_of_many_slow_symbols_is_judged_on_their_sum() -> None:
    live = StreamLiveness(POLICY, futures=False)
    streams = [f"s{i}usdt@trade" for i in range(10)]
    live.watch(streams, 0.0)
    for t in range(0, 1000, 10):  # each trades every 10 s: 1 trade a second together
        for stream in streams:
            live.delivered(stream, float(t))
    assert live.allowance_s(streams[0], 1000.0) == pytest.approx(200.0)
    assert live.connection_allowance_s(streams, 1000.0) == pytest.approx(20.0)


def test_a_never_served_stream_does_not_shorten_its_connection_allowance() -> None:
    live = StreamLiveness(POLICY, futures=False)
    streams = ["dogeusdt@aggTrade", "btcusdt@kline_1m"]
    live.watch(streams, 0.0)
    for t in range(0, 1000, 10):
        live.delivered("dogeusdt@aggTrade", float(t))
    assert live.connection_allowance_s(streams, 1000.0) == pytest.approx(200.0)
    fresh = StreamLiveness(POLICY, futures=False)
    fresh.watch(streams, 0.0)  # nothing delivered at all: the first report decides
    assert fresh.connection_allowance_s(streams, 1.0) == 30.0


def test_restart_counts_silence_from_the_new_subscription() -> None:
    live = StreamLiveness(POLICY, futures=False)
    live.watch(["btcusdt@kline_1m"], 0.0)
    live.delivered("btcusdt@kline_1m", 1.0)
    live.restart(["btcusdt@kline_1m"], 100.0)
    assert live.check(110.0) == []
    assert live.last_event_s("btcusdt@kline_1m") == 1.0
    assert [s.stream for s in live.check(121.0)] == ["btcusdt@kline_1m"]


def test_unwatched_streams_are_forgotten() -> None:
    live = StreamLiveness(POLICY, futures=False)
    live.watch(["btcusdt@kline_1m"], 0.0)
    live.unwatch(["btcusdt@kline_1m"])
    assert live.delivered("btcusdt@kline_1m", 1.0) is None
    assert live.check(1e6) == []
    assert live.allowance_s("btcusdt@kline_1m", 0.0) is None
