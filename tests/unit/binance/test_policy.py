import itertools
import random

import pytest

from gateway.binance.policy import (
    MAX_DELAY_S,
    RestPriority,
    RestTurns,
    RestWeightBudget,
    SlidingWindowLimit,
    backoff,
    is_retriable,
)
from gateway.errors import (
    ConfigError,
    KafkaDeliveryError,
    MessageParseError,
    StreamDisconnectedError,
)


def test_backoff_is_capped_and_jittered_below_an_exponential_ceiling() -> None:
    delays = list(itertools.islice(backoff(0.5, 8.0, 2.0, random.Random(7)), 12))
    ceilings = [min(0.5 * 2**i, 8.0) for i in range(12)]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays)  # jitter: no two reconnects in lockstep
    assert max(itertools.islice(backoff(rng=random.Random(1)), 200)) <= MAX_DELAY_S


def test_network_and_upstream_errors_retry_everything_else_is_fatal() -> None:
    assert is_retriable(OSError("no route"))
    assert is_retriable(TimeoutError())
    assert is_retriable(StreamDisconnectedError("closed"))
    assert not is_retriable(KafkaDeliveryError("records lost"))  # the sink already retried
    assert not is_retriable(ConfigError("bad url"))
    assert not is_retriable(MessageParseError("junk"))
    assert not is_retriable(KeyError("bug"))


def test_sliding_window_allows_the_limit_then_waits_for_the_oldest_to_expire() -> None:
    limit = SlidingWindowLimit(3, 1.0)
    for now in (0.0, 0.1, 0.2):
        assert limit.delay(now) == 0
        limit.record(now)
    assert limit.delay(0.5) == pytest.approx(0.5)
    assert limit.delay(1.0) == 0
    limit.record(1.0)
    assert limit.delay(1.05) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        SlidingWindowLimit(0, 1)


def test_spot_connection_attempts_budget() -> None:
    attempts = SlidingWindowLimit(
        300, 300.0
    )  # docs/binance.md §2: 300 attempts per 5 minutes per IP
    for i in range(300):
        attempts.record(i * 0.01)
    assert attempts.delay(3.0) == pytest.approx(297.0)


def test_rest_weight_budget_waits_for_the_next_minute_and_obeys_retry_after() -> None:
    budget = RestWeightBudget(6000, headroom=1.0)
    budget.spend(5990, now=10.0)
    assert budget.delay(5, now=11.0) == 0
    assert budget.delay(20, now=11.0) == pytest.approx(49.0)  # the weight resets at 60 s
    assert budget.delay(20, now=61.0) == 0
    budget.observe(200, used_weight=5999, retry_after_s=None, now=62.0)  # Binance's count wins
    assert budget.delay(5, now=62.0) == pytest.approx(58.0)
    budget.observe(429, used_weight=None, retry_after_s=30, now=70.0)
    assert budget.delay(1, now=80.0) == pytest.approx(20.0)  # nothing at all until Retry-After
    budget.observe(418, used_weight=None, retry_after_s=120, now=100.0)
    assert budget.delay(1, now=121.0) == pytest.approx(99.0)


def test_backfill_and_probes_leave_a_reserve_for_exchange_info_and_snapshots() -> None:
    budget = RestWeightBudget(6000, headroom=1.0)
    budget.spend(3590, now=10.0)  # just under the probes' 60 %
    assert budget.delay(4, now=11.0, priority=RestPriority.PROBE) == 0
    assert budget.delay(25, now=11.0, priority=RestPriority.PROBE) == pytest.approx(49.0)
    assert budget.delay(25, now=11.0, priority=RestPriority.BACKFILL) == 0
    budget.observe(200, used_weight=5399, retry_after_s=None, now=12.0)  # other workers, same IP
    assert budget.delay(4, now=12.0, priority=RestPriority.BACKFILL) == pytest.approx(48.0)
    assert budget.delay(50, now=12.0, priority=RestPriority.SNAPSHOT) == 0
    budget.observe(200, used_weight=5700, retry_after_s=None, now=13.0)
    assert budget.delay(50, now=13.0, priority=RestPriority.SNAPSHOT) == pytest.approx(47.0)
    assert budget.delay(20, now=13.0, priority=RestPriority.CONTROL) == 0  # exchangeInfo
    assert budget.delay(20, now=13.0) == 0  # unnamed calls (accounts) are control
    # However much backfill and probes are given, 10 % of the minute stays exchangeInfo's.
    fresh = RestWeightBudget(2400, headroom=0.9)
    spent = 0
    while fresh.delay(20, now=5.0, priority=RestPriority.BACKFILL) == 0:
        fresh.spend(20, now=5.0)
        spent += 20
    assert spent <= 0.9 * fresh.limit
    assert fresh.limit - spent >= 0.1 * fresh.limit


def test_a_request_heavier_than_its_share_goes_alone_at_the_start_of_a_minute() -> None:
    budget = RestWeightBudget(100, headroom=1.0)
    assert budget.delay(80, now=0.0, priority=RestPriority.PROBE) == 0  # 80 > its share of 60
    budget.spend(1, now=0.5)
    assert budget.delay(80, now=1.0, priority=RestPriority.PROBE) == pytest.approx(59.0)
    assert budget.delay(101, now=61.0, priority=RestPriority.CONTROL) == pytest.approx(59.0)


def test_rest_turns_go_by_priority_then_arrival() -> None:
    turns = RestTurns()
    assert turns.first() is None
    probe = turns.join(RestPriority.PROBE)
    backfill = turns.join(RestPriority.BACKFILL)
    backfill_2 = turns.join(RestPriority.BACKFILL)
    assert turns.first() == backfill
    control = turns.join(RestPriority.CONTROL)  # exchangeInfo overtakes everything waiting
    assert turns.first() == control
    turns.leave(control)
    assert turns.first() == backfill
    turns.leave(backfill_2)  # cancelled while waiting
    turns.leave(backfill)
    assert turns.first() == probe
    turns.leave(probe)
    turns.leave(probe)  # leaving twice is harmless
    assert turns.first() is None and len(turns) == 0


def test_a_retry_deadline_backs_off_then_gives_up() -> None:
    from gateway.binance.policy import RetryDeadline

    deadline = RetryDeadline(10.0, now_s=100.0, delays=iter([4.0, 8.0, 16.0]))
    assert deadline.next_delay(100.0) == 4.0
    assert deadline.next_delay(104.0) == 6.0  # never sleeps past the deadline
    assert deadline.next_delay(110.0) is None
