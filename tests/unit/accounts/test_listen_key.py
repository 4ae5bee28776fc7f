"""The futures listen-key cycle under arbitrary clocks: renewed before expiry, replaced when lost."""

import pytest
from hypothesis import given, settings, strategies as st

from gateway.binance.listen_key import (
    KeyAction,
    KeyState,
    ListenKeyCycle,
    ListenKeyTimings,
    private_stream_url,
)
from gateway.binance.markets import Market

TIMINGS = ListenKeyTimings(validity_s=3_600.0, keepalive_interval_s=1_800.0, retry_s=30.0)


def created(now: float = 0.0, key: str = "k1") -> ListenKeyCycle:
    cycle = ListenKeyCycle(TIMINGS)
    assert cycle.action_due(now) is KeyAction.CREATE
    assert cycle.receive_created(key, now) is True
    return cycle


def test_keep_alive_every_30_minutes_extends_the_key() -> None:
    cycle = created()
    assert cycle.action_due(1_799.0) is None
    assert cycle.next_wakeup_s(1_000.0) == pytest.approx(800.0)
    assert cycle.action_due(1_800.0) is KeyAction.KEEPALIVE
    assert cycle.state is KeyState.RENEWING and cycle.action_due(1_801.0) is None
    cycle.receive_kept_alive(1_801.0)
    assert cycle.expires_at_s() == pytest.approx(1_801.0 + 3_600.0)
    assert cycle.generation == 1 and cycle.age_s(2_000.0) == pytest.approx(2_000.0)


def state_of(cycle: ListenKeyCycle) -> KeyState:
    """Read afresh: mypy would carry an earlier ``assert cycle.state is ...`` across calls."""
    return cycle.state


def test_minus_1125_and_listen_key_expired_make_a_new_key_and_a_new_generation() -> None:
    cycle = created()
    cycle.action_due(1_800.0)
    cycle.receive_key_missing(1_800.5)
    assert cycle.key is None and cycle.action_due(1_800.5) is KeyAction.CREATE
    assert cycle.receive_created("k2", 1_801.0) and cycle.generation == 2
    cycle.receive_expired_event("k1", 1_802.0)  # about the old key: ignored
    assert cycle.state is KeyState.ACTIVE and cycle.key == "k2"
    cycle.receive_expired_event("k2", 1_803.0)
    assert state_of(cycle) is KeyState.NO_KEY and cycle.action_due(1_803.0) is KeyAction.CREATE


def test_a_failed_keep_alive_is_retried_before_the_key_lapses() -> None:
    cycle = created()
    cycle.action_due(1_800.0)
    cycle.receive_failure(1_800.0)
    assert cycle.state is KeyState.ACTIVE and cycle.key == "k1"
    assert cycle.next_wakeup_s(1_800.0) == pytest.approx(30.0)


def test_a_stale_answer_after_the_key_was_dropped_is_ignored() -> None:
    cycle = created()
    cycle.action_due(1_800.0)  # PUT in flight ...
    cycle.receive_expired_event("k1", 1_800.1)  # ... when listenKeyExpired arrives
    cycle.receive_kept_alive(1_800.2)
    cycle.receive_key_missing(1_800.3)
    assert cycle.state is KeyState.NO_KEY and cycle.action_due(1_800.3) is KeyAction.CREATE


def test_refresh_posts_again_and_keeps_the_key_if_binance_returns_it() -> None:
    cycle = created()
    cycle.refresh(100.0)
    assert cycle.action_due(100.0) is KeyAction.CREATE
    assert cycle.receive_created("k1", 100.0) is False and cycle.generation == 1
    assert cycle.expires_at_s() == pytest.approx(3_700.0)


def test_timings_must_leave_room_for_a_keep_alive() -> None:
    with pytest.raises(ValueError):
        ListenKeyTimings(validity_s=60.0, keepalive_interval_s=60.0)


def test_private_stream_urls_follow_the_current_paths() -> None:
    assert (
        private_stream_url(Market.USDM, "wss://fstream.binance.com/", "abc")
        == "wss://fstream.binance.com/private/ws?listenKey=abc"
    )
    assert private_stream_url(Market.COINM, "wss://dstream.binance.com", "abc") == (
        "wss://dstream.binance.com/ws/abc"
    )
    with pytest.raises(ValueError, match="WebSocket API"):
        private_stream_url(Market.SPOT, "wss://stream.binance.com", "abc")


def drive(cycle: ListenKeyCycle, now: float, outcomes: list[bool]) -> None:
    """Do what the cycle asks at ``now``; each request succeeds or fails per ``outcomes``."""
    action = cycle.action_due(now)
    if action is None:
        return
    ok = outcomes.pop(0) if outcomes else True
    if not ok:
        cycle.receive_failure(now)
    elif action is KeyAction.CREATE:
        cycle.receive_created(f"key{cycle.generation + 1}", now)
    else:
        cycle.receive_kept_alive(now)


@settings(max_examples=300, deadline=None)
@given(
    lateness=st.lists(st.floats(min_value=0.0, max_value=100.0), min_size=1, max_size=200),
    outcomes=st.lists(st.booleans(), max_size=200),
)
def test_never_expires_while_the_process_runs(lateness: list[float], outcomes: list[bool]) -> None:
    """Whatever the scheduler's lateness (up to 100 s per wake-up) and whichever requests fail
    (up to 10 in a row), the key never lapses: the 30 minutes between the keep-alive cadence and
    the 60-minute validity absorb 1,800 >= 100 + 10 x (30 s retry + 100 s). (Hypothesis found
    that 1,000 s of lateness and two failures do lapse it: no cadence survives every clock.)"""
    outcomes = limit_failure_runs(outcomes, 10)
    cycle = ListenKeyCycle(TIMINGS)
    now = 0.0
    drive(cycle, now, [True])
    for late in lateness:
        now += cycle.next_wakeup_s(now) + late
        assert not cycle.expired(now) or cycle.key is None, f"key lapsed at {now}"
        drive(cycle, now, outcomes)
        if cycle.state is KeyState.ACTIVE:
            expires_at = cycle.expires_at_s()
            assert expires_at is not None and expires_at > now
    assert cycle.generation == 1  # one key for the whole run: never re-created


def limit_failure_runs(outcomes: list[bool], longest: int) -> list[bool]:
    limited, run = [], 0
    for ok in outcomes:
        run = 0 if ok else run + 1
        limited.append(ok or run > longest)
    return limited


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.floats(min_value=0.0, max_value=10_000.0), min_size=1, max_size=100))
def test_an_expired_key_is_never_kept_alive_only_replaced(steps: list[float]) -> None:
    """Under any clock (even a process suspended for hours), a lapsed key is not PUT: the cycle
    asks for a new one."""
    cycle = created()
    now = 0.0
    for step in steps:
        now += step
        lapsed = cycle.expired(now)
        action = cycle.action_due(now)
        if lapsed:
            assert action in (KeyAction.CREATE, None)
        if action is KeyAction.CREATE:
            cycle.receive_created(f"k{cycle.generation + 1}", now)
        elif action is KeyAction.KEEPALIVE:
            cycle.receive_kept_alive(now)
        assert cycle.state is KeyState.ACTIVE


def test_refresh_abandons_a_create_left_in_flight() -> None:
    cycle = ListenKeyCycle(TIMINGS)
    assert cycle.action_due(0.0) is KeyAction.CREATE  # the POST's connection died with it
    assert cycle.action_due(1.0) is None
    cycle.refresh(2.0)
    assert cycle.action_due(2.0) is KeyAction.CREATE
