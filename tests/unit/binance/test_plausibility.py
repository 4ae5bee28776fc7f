from gateway.binance.plausibility import event_time_problem

NOW_US = 1_700_000_000_000_000


def test_event_times_within_the_bound_pass_and_others_say_why() -> None:
    assert event_time_problem(NOW_US - 5_000_000, NOW_US, 3600) is None
    assert event_time_problem(NOW_US + 3_599_000_000, NOW_US, 3600) is None
    ahead = event_time_problem(NOW_US + 2 * 3600 * 1_000_000, NOW_US, 3600)
    assert ahead is not None and "7200s ahead of" in ahead
    garbage = event_time_problem(-5_000, NOW_US, 3600)
    assert garbage is not None and "behind" in garbage
