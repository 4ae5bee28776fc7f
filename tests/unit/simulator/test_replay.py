"""Capture parsing and pacing (pure)."""

import orjson
import pytest

from gateway.simulator.replay import load_capture, schedule


def test_every_line_form_is_understood() -> None:
    frames = load_capture(
        [
            '{"received_at_us": 1000000, "frame": "{\\"e\\":\\"trade\\",\\"E\\":1}"}',
            '{"ts_ms": 1500, "frame": {"stream": "btcusdt@trade", "data": {"E": 1500}}}',
            "",
            '{"stream": "btcusdt@aggTrade", "data": {"e": "aggTrade", "E": 2000}}',
            '{"frame": "not json at all"}',
        ]
    )
    assert [f.time_us for f in frames] == [1_000_000, 1_500_000, 2_000_000, 2_000_000]
    assert frames[0].data == b'{"e":"trade","E":1}'  # sent exactly as recorded
    assert [f.stream for f in frames] == [None, "btcusdt@trade", "btcusdt@aggTrade", None]
    assert orjson.loads(frames[2].data)["stream"] == "btcusdt@aggTrade"


def test_pacing_divides_recorded_gaps_by_the_speed_and_never_goes_back() -> None:
    frames = load_capture(
        [f'{{"ts_us": {t}, "frame": "x"}}' for t in (0, 1_000_000, 500_000, 3_000_000)]
    )
    assert [offset for offset, _ in schedule(frames, 10)] == pytest.approx([0, 0.1, 0.1, 0.3])


def test_a_line_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError):
        load_capture(["[1, 2]"])
