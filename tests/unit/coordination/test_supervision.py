"""The restart schedule: backoff, then "failing" and a slow retry; recovery forgets old failures."""

from __future__ import annotations

from gateway.coordination.supervision import RestartPolicy


def test_failures_back_off_then_the_task_is_reported_failing_and_retried_slowly() -> None:
    policy = RestartPolicy(max_failures=3, window_s=60.0, failing_retry_s=30.0)
    first, second = policy.failed(0.0), policy.failed(1.0)
    assert 0 <= first <= 1.0 and 0 <= second <= 2.0  # capped, jittered backoff
    assert not policy.failing
    assert policy.failed(2.0) == 30.0
    assert policy.failing


def test_failures_outside_the_window_do_not_count() -> None:
    policy = RestartPolicy(max_failures=3, window_s=10.0, failing_retry_s=30.0)
    policy.failed(0.0)
    policy.failed(5.0)
    policy.failed(20.0)  # the first two have aged out
    assert not policy.failing


def test_running_a_whole_window_clears_the_failing_state() -> None:
    policy = RestartPolicy(max_failures=2, window_s=10.0, failing_retry_s=30.0)
    policy.failed(0.0)
    policy.failed(1.0)
    assert policy.failing
    policy.ran(12.0)
    assert not policy.failing
