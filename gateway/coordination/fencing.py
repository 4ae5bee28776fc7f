"""Whether this worker may still publish: its group membership as a lease, pure (docs/fencing.md).

The group gives a member's shards to the others once it has not heartbeated for
``session_timeout_ms``; a worker paused that long (SIGSTOP, a VM freeze, a swap storm) wakes up
with records in its producer for shards that now stream elsewhere. Its own clock tells it first:
the broker's session started no earlier than the moment this worker *sent* its last heartbeat
that the broker answered, so after ``session_timeout_ms - margin_ms`` from then, this worker
can no longer be sure it is a member, and it publishes nothing until it knows:

* the broker confirms the **same member id** (a heartbeat accepted, or a rebalance joined with
  it): it never expelled this worker, so no generation gave its shards to another without the
  hand-over on the control topic; the lease is held again and the held records go out in order;
* the membership comes back under **another member id** (the broker had forgotten this one, and
  the worker joined afresh): the held records may now duplicate or interleave with the new
  owners', so they are refused and the worker stops; its shards' next owners resumed from Kafka.

A lapse is therefore also what a long rebalance looks like (aiokafka does not heartbeat while a
join is pending; the broker keeps a joining member alive): records wait, none are refused.

The producer asks :meth:`Lease.verdict` right before each request leaves for the broker, so a
record handed to the producer before the pause cannot slip out after it.
"""

from __future__ import annotations

import enum
import logging

logger = logging.getLogger(__name__)


class LeaseState(enum.Enum):
    UNJOINED = "unjoined"  # no membership yet: no shards, nothing of a shard to fence
    HELD = "held"
    LAPSED = "lapsed"  # may have been expelled: hold everything until the broker says
    FENCED = "fenced"  # was expelled: what was held must not be written


class Verdict(enum.Enum):
    PUBLISH = "publish"
    HOLD = "hold"
    REFUSE = "refuse"


_TRANSITIONS: dict[LeaseState, frozenset[LeaseState]] = {
    LeaseState.UNJOINED: frozenset({LeaseState.HELD}),
    LeaseState.HELD: frozenset({LeaseState.HELD, LeaseState.LAPSED}),
    LeaseState.LAPSED: frozenset({LeaseState.HELD, LeaseState.FENCED}),
    LeaseState.FENCED: frozenset(),
}


class Lease:
    """The membership lease of one worker; times are a monotonic clock's seconds."""

    def __init__(self, session_timeout_s: float, margin_s: float) -> None:
        if not 0 < margin_s < session_timeout_s:
            raise ValueError("the margin must be positive and shorter than the session timeout")
        self._length_s = session_timeout_s - margin_s
        self.state = LeaseState.UNJOINED
        self.member: str | None = None
        self.expires_at = 0.0

    def confirmed(self, member: str, sent_at: float) -> None:
        """The broker confirmed ``member`` (the group member id) for a request sent at
        ``sent_at``: a heartbeat answered without error, or a completed join."""
        if self.state is LeaseState.FENCED:
            return
        self._expire(sent_at)  # a pause shows first here when nothing was published since
        if self.state is LeaseState.LAPSED and member != self.member:
            self._set(LeaseState.FENCED, f"expelled: rejoined as {member}, was {self.member}")
            return
        self.member = member
        self.expires_at = max(self.expires_at, sent_at + self._length_s)
        self._set(LeaseState.HELD, f"member {member}")

    def verdict(self, now: float) -> Verdict:
        """May a request leave for the broker at ``now``?"""
        self._expire(now)
        if self.state is LeaseState.LAPSED:
            return Verdict.HOLD
        if self.state is LeaseState.FENCED:
            return Verdict.REFUSE
        return Verdict.PUBLISH

    def _expire(self, now: float) -> None:
        if self.state is LeaseState.HELD and now >= self.expires_at:
            self._set(LeaseState.LAPSED, f"no confirmed heartbeat for {self._length_s:.1f}s")

    def _set(self, state: LeaseState, why: str) -> None:
        if state is self.state:
            return
        if state not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"lease cannot go from {self.state.value} to {state.value}")
        log = logger.error if state is LeaseState.FENCED else logger.warning
        if state is LeaseState.HELD and self.state is LeaseState.UNJOINED:
            log = logger.info
        log(
            "group membership lease %s -> %s (%s)",
            self.state.value,
            state.value,
            why,
            extra={"event_data": {"from": self.state.value, "to": state.value}},
        )
        self.state = state
