"""Limits as pure counters."""

from gateway.simulator.limits import ENDPOINT_WEIGHTS, MessageRateLimiter, WeightCounter


def test_five_messages_per_second_then_refused() -> None:
    limiter = MessageRateLimiter(5)
    assert all(limiter.allow(10.0 + i * 0.1) for i in range(5))
    assert not limiter.allow(10.5)


def test_the_window_slides() -> None:
    limiter = MessageRateLimiter(2)
    assert limiter.allow(0.0) and limiter.allow(0.5)
    assert limiter.allow(1.0)  # the message at 0.0 left the window
    assert not limiter.allow(1.2)


def test_weight_adds_up_within_a_minute_and_resets_on_the_next() -> None:
    counter = WeightCounter()
    assert counter.add("a", 4, 60_000) == 4
    assert counter.add("a", 20, 119_999) == 24
    assert counter.add("b", 1, 119_999) == 1  # per client
    assert counter.add("a", 4, 120_000) == 4


def test_documented_weights() -> None:
    assert ENDPOINT_WEIGHTS["/api/v3/aggTrades"] == 4
    assert ENDPOINT_WEIGHTS["/api/v3/exchangeInfo"] == 20
    assert ENDPOINT_WEIGHTS["/api/v3/trades"] == ENDPOINT_WEIGHTS["/api/v3/historicalTrades"] == 25
