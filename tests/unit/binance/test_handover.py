"""Make-before-break switching: the union of two overlapping connections, once, in order."""

from __future__ import annotations

from hypothesis import given, strategies as st

from gateway.binance.handover import Handover, HeldFrame


def frame(n: int) -> bytes:
    return b'{"stream":"btcusdt@trade","data":{"t":%d}}' % n


@given(
    total=st.integers(1, 60),
    successor_from=st.integers(0, 60),
    old_until=st.integers(0, 60),
    data=st.data(),
)
def test_switching_publishes_every_frame_once_in_order(
    total: int, successor_from: int, old_until: int, data: st.DataObject
) -> None:
    """The stream is frames 0..total-1. The old connection sees [0, old_end), the successor
    [successor_from, total), overlapping, each in order but interleaved at random with the other
    (either may be ahead); the switch happens once they overlap, or when the old one has ended.
    Published: each frame exactly once, in order."""
    successor_from = min(successor_from, total - 1)
    old_end = min(total, max(old_until, successor_from + 1))  # overlap: old outlives the start
    old, successor = list(range(old_end)), list(range(successor_from, total))
    handover = Handover()
    published: list[bytes] = []
    while old or successor:
        if old and (not successor or data.draw(st.booleans())):
            index = old.pop(0)
            if handover.from_old(frame(index)):
                published.append(frame(index))
            if not handover.switched and (handover.overlapped or not old):
                published.extend(f.raw for f in handover.switch())  # the old connection ended
            continue
        held = HeldFrame(frame(successor.pop(0)), 0, 0)
        if handover.from_successor(held):
            published.append(held.raw)
        if not handover.switched and handover.overlapped:
            published.extend(f.raw for f in handover.switch())
    if not handover.switched:
        published.extend(f.raw for f in handover.switch())
    assert published == [frame(i) for i in range(total)]


def test_a_stream_that_repeats_a_frame_keeps_both_copies() -> None:
    handover = Handover()
    same = frame(1)
    assert handover.from_old(same) and handover.from_old(same)
    assert not handover.from_successor(HeldFrame(same, 0, 0))
    assert handover.overlapped
    assert handover.switch() == []  # the one held copy was published by the old connection
    assert not handover.from_successor(HeldFrame(same, 0, 0))  # the second copy too
    assert handover.from_successor(HeldFrame(same, 0, 0))  # a third is new
    assert handover.duplicates == 2
    assert not handover.from_old(frame(9))  # after the switch the old connection is ignored
