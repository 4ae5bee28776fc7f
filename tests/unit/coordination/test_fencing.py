"""The membership lease: when a worker's records may leave for Kafka (docs/fencing.md)."""

from __future__ import annotations

import pytest

from gateway.coordination.fencing import Lease, LeaseState, Verdict

SESSION_S, MARGIN_S = 10.0, 3.0


def held(member: str = "m1", at: float = 0.0) -> Lease:
    lease = Lease(SESSION_S, MARGIN_S)
    lease.confirmed(member, at)
    return lease


def test_before_any_membership_nothing_is_fenced() -> None:
    lease = Lease(SESSION_S, MARGIN_S)
    assert lease.verdict(1e6) is Verdict.PUBLISH  # no shard is streamed before a join


def test_a_lease_lasts_the_session_timeout_less_the_margin_from_the_heartbeat_sent() -> None:
    lease = held(at=100.0)
    assert lease.verdict(106.9) is Verdict.PUBLISH
    assert lease.verdict(107.0) is Verdict.HOLD
    assert lease.state is LeaseState.LAPSED


def test_heartbeats_extend_the_lease_and_a_late_answer_never_shortens_it() -> None:
    lease = held(at=0.0)
    lease.confirmed("m1", 5.0)
    assert lease.verdict(11.0) is Verdict.PUBLISH
    lease.confirmed("m1", 2.0)  # an older request answered late
    assert lease.verdict(11.9) is Verdict.PUBLISH
    assert lease.verdict(12.0) is Verdict.HOLD


def test_a_long_rebalance_holds_records_and_ends_with_the_same_member() -> None:
    lease = held(member="m1", at=0.0)
    assert lease.verdict(8.0) is Verdict.HOLD  # no heartbeats while a join is pending
    lease.confirmed("m1", 9.0)  # joined the next generation as the same member
    assert lease.verdict(9.0) is Verdict.PUBLISH


def test_a_lapse_ended_by_the_same_member_releases_what_was_held() -> None:
    lease = held(member="m4", at=0.0)
    assert lease.verdict(30.0) is Verdict.HOLD  # a long Kafka outage, say
    lease.confirmed("m4", 31.0)  # still a member: nobody was given the shards
    assert lease.state is LeaseState.HELD
    assert lease.verdict(32.0) is Verdict.PUBLISH


def test_a_lapse_ended_by_another_member_fences_for_good() -> None:
    lease = held(member="m4", at=0.0)
    assert lease.verdict(30.0) is Verdict.HOLD  # paused past the session timeout
    lease.confirmed("m5", 31.0)  # expelled meanwhile, and joined afresh
    assert lease.state is LeaseState.FENCED
    assert lease.verdict(31.0) is Verdict.REFUSE
    lease.confirmed("m5", 32.0)  # a later heartbeat does not undo it
    assert lease.verdict(32.0) is Verdict.REFUSE


def test_the_margin_must_fit_in_the_session() -> None:
    with pytest.raises(ValueError):
        Lease(3.0, 3.0)
    with pytest.raises(ValueError):
        Lease(3.0, 0.0)


def test_a_rejoin_learned_before_anything_was_published_still_fences() -> None:
    # After SIGCONT the heartbeat fails and the rejoin completes before any batch leaves:
    # the lapse is judged when the new member is confirmed, not only when publishing.
    lease = held(member="m4", at=0.0)
    lease.confirmed("m5", 40.0)
    assert lease.state is LeaseState.FENCED
    assert lease.verdict(40.0) is Verdict.REFUSE
