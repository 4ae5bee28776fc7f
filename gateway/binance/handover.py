"""Make-before-break: switching a stream connection to its successor without a gap or a repeat.

Binance cuts every connection at 24 hours (and earlier on ``serverShutdown``). The gateway opens
the successor first, subscribed to the same streams; from then on everything Binance sends is on
the successor, and everything before was on the old connection. So:

1. keep publishing from the old connection, remembering each frame published since the
   successor opened;
2. hold the successor's frames back until the two overlap: the old connection delivers a frame
   the successor holds, or the successor one the old published. Binance sends events in one
   order to every connection, so the old one has then delivered everything from before the
   successor's subscription. Close the old connection (on quiet streams that never overlap, after
   a timeout long enough for anything in flight to have arrived);
3. publish the successor's frames except those the old one already published, and go on.

Frames of one stream are byte-identical on both connections, so a frame is recognised by its
bytes; a multiset, since a stream may legitimately repeat a frame. Pure: the connection shell
moves the bytes and owns the clock.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HeldFrame:
    """A successor's frame waiting for the switch, with its receive times."""

    raw: bytes
    received_at_us: int
    received_ns: int


class Handover:
    """Bookkeeping of one switch from an old connection to its successor."""

    def __init__(self) -> None:
        self._published: Counter[bytes] = Counter()
        self._held: list[HeldFrame] = []
        self._held_bytes: set[bytes] = set()
        self.overlapped = False
        self.switched = False
        self.duplicates = 0

    def from_old(self, raw: bytes) -> bool:
        """A frame of the old connection: publish it (True) unless the switch already happened."""
        if self.switched:
            return False  # the old connection is being closed: the successor carries it all
        self._published[raw] += 1
        if raw in self._held_bytes:
            self.overlapped = True
        return True

    def from_successor(self, frame: HeldFrame) -> bool:
        """A frame of the successor: publish it now (True), or hold it until the switch."""
        if not self.switched:
            self._held.append(frame)
            self._held_bytes.add(frame.raw)
            if self._published[frame.raw]:
                self.overlapped = True
            return False
        return not self._seen(frame.raw)

    def switch(self) -> list[HeldFrame]:
        """Stop the old connection here; the held frames to publish, in order, without repeats."""
        self.switched = True
        held, self._held = self._held, []
        self._held_bytes.clear()
        return [frame for frame in held if not self._seen(frame.raw)]

    def _seen(self, raw: bytes) -> bool:
        if self._published[raw] > 0:
            self._published[raw] -= 1
            self.duplicates += 1
            return True
        return False
