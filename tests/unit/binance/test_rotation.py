"""The connection phases: the transition table, and frames routed by the connection they came on."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from gateway.binance.handover import HeldFrame
from gateway.binance.rotation import _TRANSITIONS, RETRY_ROTATION_S, Phase, Rotation
from gateway.errors import InvalidStateError

S = 1_000_000_000  # ns per second


def frame(n: int) -> bytes:
    return b'{"stream":"btcusdt@trade","data":{"t":%d}}' % n


def serving(**kwargs: float) -> Rotation:
    rotation = Rotation("c", kwargs.get("rotate_after_s", 100.0), kwargs.get("timeout_s", 10.0))
    rotation.start()
    assert rotation.connected() == 1
    return rotation


def overlapping() -> Rotation:
    rotation = serving()
    assert rotation.open_successor() == 2
    rotation.successor_opened()
    return rotation


def test_the_table_is_the_documented_cycle() -> None:
    cycle = [Phase.CLOSED, Phase.CONNECTING, Phase.SERVING, Phase.OPENING, Phase.OVERLAPPING]
    for before, after in zip(cycle, [*cycle[1:], Phase.SERVING], strict=True):
        assert (before, after) in _TRANSITIONS
    assert (Phase.OPENING, Phase.SERVING) in _TRANSITIONS  # the successor refused
    for live in (Phase.SERVING, Phase.OPENING, Phase.OVERLAPPING):
        assert (live, Phase.CONNECTING) in _TRANSITIONS  # lost
        assert (live, Phase.CLOSED) in _TRANSITIONS  # stopped
    assert (Phase.CONNECTING, Phase.CLOSED) in _TRANSITIONS
    assert len(_TRANSITIONS) == 13  # nothing else: no skipping the overlap, nothing out of CLOSED


@pytest.mark.parametrize(
    "drive",
    [
        lambda r: r.connected(),  # CLOSED: never started
        lambda r: r.open_successor(),
        lambda r: r.switch(0),
        lambda r: r.successor_opened(),
        lambda r: r.keep_old(),
        lambda r: r.lost(),
    ],
)
def test_a_transition_not_in_the_table_is_a_bug(drive: Callable[[Rotation], object]) -> None:
    with pytest.raises(InvalidStateError, match="CLOSED"):
        drive(Rotation("c", 100.0, 10.0))


def test_overlapping_cannot_be_reached_without_opening() -> None:
    rotation = serving()
    with pytest.raises(InvalidStateError, match="SERVING -> OVERLAPPING"):
        rotation.successor_opened()


def test_every_phase_change_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="gateway.binance.rotation"):
        rotation = overlapping()
        rotation.switch(0)
    assert [r.getMessage() for r in caplog.records] == [
        "c: CLOSED -> CONNECTING",
        "c: CONNECTING -> SERVING",
        "c: SERVING -> OPENING",
        "c: OPENING -> OVERLAPPING",
        "c: OVERLAPPING -> SERVING",
    ]


def test_a_served_connection_publishes_everything_without_a_handover() -> None:
    rotation = serving()
    assert rotation.handover is None
    assert rotation.receive(1, frame(1), 1, 1)
    assert not rotation.receive(7, frame(1), 1, 1)  # not a connection it serves


def test_make_before_break_through_the_phases() -> None:
    rotation = serving()
    assert rotation.due_in_s == 100.0
    rotation.open_successor()
    assert rotation.phase is Phase.OPENING
    assert rotation.receive(1, frame(1), 1, 1)  # the old one publishes, recorded
    rotation.successor_opened()
    assert not rotation.overlapped
    assert not rotation.receive(2, frame(2), 2, 2)  # held
    assert not rotation.overlapped
    assert rotation.receive(1, frame(2), 2, 2)  # published by the old: now they overlap
    assert rotation.overlapped
    held = rotation.switch(now_ns=10 * S)
    assert held == []  # the one held frame was published by the old connection
    assert (rotation.phase, rotation.serving, rotation.successor) == (Phase.SERVING, 2, 0)
    assert not rotation.receive(1, frame(3), 3, 3)  # the old one is ignored from now on
    assert rotation.retired(1) and not rotation.retired(2)
    assert rotation.receive(2, frame(3), 3, 11 * S)
    assert rotation.duplicates == 1


def test_held_frames_are_published_at_the_switch_in_order() -> None:
    rotation = overlapping()
    assert not rotation.receive(2, frame(5), 50, 51)
    assert not rotation.receive(2, frame(6), 60, 61)
    assert rotation.switch(0) == [HeldFrame(frame(5), 50, 51), HeldFrame(frame(6), 60, 61)]


def test_late_copies_are_filtered_for_the_handover_timeout_then_the_fast_path_returns() -> None:
    rotation = serving(timeout_s=10.0)
    rotation.open_successor()
    assert rotation.receive(1, frame(1), 1, 1)
    assert rotation.receive(1, frame(2), 2, 2)  # the old one was ahead on this stream
    rotation.successor_opened()
    assert not rotation.receive(2, frame(1), 1, 1)
    rotation.switch(now_ns=100 * S)
    assert not rotation.receive(2, frame(2), 2, 101 * S)  # a late copy: published already
    assert rotation.handover is not None
    assert rotation.receive(2, frame(3), 3, 110 * S)  # the timeout passed: filtering ends
    assert rotation.handover is None
    assert rotation.duplicates == 2


def test_a_refused_successor_keeps_the_old_connection_and_retries_soon() -> None:
    rotation = serving()
    rotation.replace(1)  # serverShutdown on connection 1
    assert rotation.rotation_requested
    rotation.open_successor()
    assert not rotation.rotation_requested  # being served
    rotation.keep_old()
    assert (rotation.phase, rotation.serving, rotation.handover) == (Phase.SERVING, 1, None)
    assert rotation.due_in_s == RETRY_ROTATION_S
    assert not rotation.rotation_requested  # tried again when due, not at once again
    assert rotation.receive(1, frame(1), 1, 1)


def test_a_successor_that_dies_while_overlapping_is_dropped_with_its_held_frames() -> None:
    rotation = overlapping()
    assert not rotation.receive(2, frame(5), 5, 5)
    rotation.keep_old()
    assert rotation.retired(2)
    assert not rotation.receive(2, frame(6), 6, 6)
    assert rotation.receive(1, frame(6), 6, 6)


def test_a_shutdown_notice_replaces_only_the_connection_it_came_on() -> None:
    rotation = overlapping()
    rotation.replace(1)  # the old connection repeats its notice during the overlap
    rotation.switch(0)
    assert not rotation.rotation_requested  # connection 2 is not concerned
    rotation.replace(2)
    assert rotation.rotation_requested


def test_new_streams_replace_every_connection_opened_so_far_a_successor_too() -> None:
    rotation = overlapping()
    rotation.replace()  # the successor may have been opened with the old streams
    rotation.switch(0)
    assert rotation.rotation_requested
    rotation.open_successor()
    rotation.successor_opened()
    rotation.switch(0)
    assert not rotation.rotation_requested


def test_streams_changed_before_the_first_connection_need_no_rotation() -> None:
    rotation = Rotation("c", 100.0, 10.0)
    rotation.replace()
    rotation.start()
    rotation.connected()
    assert not rotation.rotation_requested


def test_a_lost_connection_reconnects_and_forgets_the_handover() -> None:
    rotation = overlapping()
    assert rotation.receive(1, frame(1), 1, 1)
    assert not rotation.receive(2, frame(1), 1, 1)
    assert rotation.switch(0) == []  # counted once
    rotation.open_successor()
    rotation.lost()
    assert (rotation.phase, rotation.serving, rotation.handover) == (Phase.CONNECTING, 0, None)
    assert rotation.retired(1) and rotation.retired(2)
    assert rotation.connected() == 4
    assert rotation.receive(4, frame(1), 1, 1)
    assert rotation.duplicates == 1  # the counts of handovers that ended are kept


def test_closing_is_allowed_from_any_phase_and_twice() -> None:
    rotation = overlapping()
    rotation.close()
    rotation.close()
    assert (rotation.phase, rotation.handover) == (Phase.CLOSED, None)
    rotation.start()  # run() again after a failure
    assert rotation.connected() == 3


def test_a_switch_loses_frames_only_when_the_old_connection_ended_before_the_overlap() -> None:
    rotation = overlapping()
    assert rotation.switch_loses(old_ended=True)  # cut before the successor caught up
    assert not rotation.switch_loses(old_ended=False)  # alive: the timeout is the design's bound
    rotation.receive(1, frame(7), 0, 0)
    rotation.receive(2, frame(7), 0, 0)
    assert rotation.overlapped
    assert not rotation.switch_loses(old_ended=True)  # it had delivered all before the overlap
