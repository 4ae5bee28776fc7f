"""The phases of one stream client's connections, as a pure state machine.

A stream client serves one connection at a time and replaces it make-before-break
(:mod:`gateway.binance.handover`) before Binance's 24-hour cut, on a ``serverShutdown`` notice
or when its set of streams changes::

    CLOSED ─► CONNECTING ─► SERVING ─► OPENING ─► OVERLAPPING ─► SERVING (the successor)
                                          │              │
                                          └── refused ───┴── died ──► SERVING (the old one)

A successor that is refused or dies before the switch leaves the old connection served, and the
rotation is tried again in ``RETRY_ROTATION_S``. An old connection that dies before the overlap
is switched from at once, and the switch counts as a reconnect (:meth:`Rotation.switch_loses`).
Any phase but CLOSED may end in CONNECTING (the connection was lost: reconnect) or CLOSED (the
client stopped).

Connections are numbered in the order they open, and each frame is routed by the number of the
connection it came on: the old one's frames are published and recorded, the successor's held
until the two overlap. After the switch the successor's frames are still checked against what the
old one published for ``handover_timeout_s`` (late copies of frames the old one was ahead on);
then the check ends and frames go straight through again.

The shell owns the sockets, the tasks and the clock; it tells this machine what happened and asks
it what to do. No I/O, no sleeping here.
"""

from __future__ import annotations

import enum
import logging

from gateway.binance.handover import Handover, HeldFrame
from gateway.errors import InvalidStateError

logger = logging.getLogger(__name__)

RETRY_ROTATION_S = 30.0
"""A failed rotation is tried again this soon: well before the 24-hour cut."""


class Phase(enum.Enum):
    CLOSED = "closed"  # not running (before the first connection, or stopped)
    CONNECTING = "connecting"  # no connection open: the first one, or a reconnect
    SERVING = "serving"  # one connection, its frames published as they come
    OPENING = "opening"  # the successor is connecting; the old one's frames are recorded
    OVERLAPPING = "overlapping"  # both open; the successor's frames held until they overlap


_LIVE = (Phase.SERVING, Phase.OPENING, Phase.OVERLAPPING)
_TRANSITIONS = {
    (Phase.CLOSED, Phase.CONNECTING),
    (Phase.CONNECTING, Phase.SERVING),
    (Phase.SERVING, Phase.OPENING),
    (Phase.OPENING, Phase.OVERLAPPING),
    (Phase.OPENING, Phase.SERVING),  # the successor could not open: the old one goes on
    (Phase.OVERLAPPING, Phase.SERVING),  # switched to the successor, or it died first
    *((live, Phase.CONNECTING) for live in _LIVE),  # the connection was lost
    *((phase, Phase.CLOSED) for phase in (Phase.CONNECTING, *_LIVE)),
}


class Rotation:
    """Which connection is served, when the next is due, and how frames are routed meanwhile."""

    def __init__(
        self,
        name: str,
        rotate_after_s: float,
        handover_timeout_s: float,
        retry_after_s: float = RETRY_ROTATION_S,
    ) -> None:
        self.name = name
        self._rotate_after_s = rotate_after_s
        self._handover_timeout_ns = int(handover_timeout_s * 1e9)
        self._retry_after_s = retry_after_s
        self._phase = Phase.CLOSED
        self.handover: Handover | None = None
        """Set from OPENING until the switch's late copies are over: frames take the slow path."""
        self.serving = 0
        """The number of the connection served (0: none yet)."""
        self.successor = 0
        """The number of the connection opening or overlapping (0: none)."""
        self.due_in_s = rotate_after_s
        """How long after it opened the served connection is rotated."""
        self._opened = 0  # the last number given to a connection
        self._replace_below = 0  # connections numbered below this are to be replaced now
        self._filter_until_ns = 0
        self._duplicates = 0  # of handovers that ended

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def rotation_requested(self) -> bool:
        """Whether the served connection is to be replaced now rather than when due."""
        return self._phase is Phase.SERVING and self.serving < self._replace_below

    @property
    def duplicates(self) -> int:
        """Frames seen on both connections of a handover and published once, so far."""
        return self._duplicates + (0 if self.handover is None else self.handover.duplicates)

    @property
    def overlapped(self) -> bool:
        """Whether the old connection and the successor overlapped: the switch may happen."""
        return (
            self._phase is Phase.OVERLAPPING
            and self.handover is not None
            and (self.handover.overlapped)
        )

    def start(self) -> None:
        self._set_phase(Phase.CONNECTING)

    def connected(self) -> int:
        """A connection opened (the first, or a reconnect); returns its number."""
        self._set_phase(Phase.SERVING)
        self._opened += 1
        self.serving, self.successor = self._opened, 0
        self._end_handover()
        self.due_in_s = self._rotate_after_s
        return self.serving

    def replace(self, number: int | None = None) -> None:
        """Replace connection ``number`` (a ``serverShutdown`` on it), or every connection opened
        so far (``None``: the streams changed, a successor already opening included)."""
        below = self._opened + 1 if number is None else number + 1
        self._replace_below = max(self._replace_below, below)

    def open_successor(self) -> int:
        """The rotation begins: the successor's number. The old connection's frames are recorded
        from now on, since any of them may arrive on the successor too."""
        self._set_phase(Phase.OPENING)
        self._opened += 1
        self._end_handover()  # the last switch's late copies are long over
        self.successor, self.handover = self._opened, Handover()
        return self.successor

    def successor_opened(self) -> None:
        self._set_phase(Phase.OVERLAPPING)

    def keep_old(self) -> None:
        """The successor failed to open or died before the switch: nothing of it was published;
        serve the old connection and try again in ``retry_after_s``."""
        self._set_phase(Phase.SERVING)
        self.successor = 0
        self._end_handover()
        self.due_in_s = self._retry_after_s
        self._replace_below = 0  # what was asked for is retried then, not at once again

    def switch_loses(self, old_ended: bool) -> bool:
        """Whether switching now may have lost frames: the old connection ended (``old_ended``)
        before the two overlapped, so what was sent between its end and the successor's
        subscription came on neither. For its streams the switch is then a reconnect (their
        windows declared, quiet trade streams probed); otherwise it is seamless."""
        return old_ended and not self.overlapped

    def switch(self, now_ns: int) -> list[HeldFrame]:
        """Serve the successor from here on; returns its held frames to publish, in order."""
        handover = self.handover
        if self._phase is not Phase.OVERLAPPING or handover is None:
            raise InvalidStateError(f"{self.name}: switch while {self._phase.name}")
        self._set_phase(Phase.SERVING)
        self.serving, self.successor = self.successor, 0
        self.due_in_s = self._rotate_after_s
        self._filter_until_ns = now_ns + self._handover_timeout_ns
        return handover.switch()

    def receive(self, number: int, raw: bytes, received_at_us: int, received_ns: int) -> bool:
        """A frame of connection ``number``: publish it now (True), or not (recorded, held, or
        a late copy of one published already). The shell skips this call while no handover is
        on and ``number`` is served: the answer is then True."""
        handover = self.handover
        if handover is not None and handover.switched and received_ns >= self._filter_until_ns:
            self._end_handover()  # anything in flight at the switch has arrived by now
            handover = None
        if handover is None:
            return number == self.serving  # not a replaced connection's last frames
        if number == (self.successor or self.serving) and number > 0:
            return handover.from_successor(HeldFrame(raw, received_at_us, received_ns))
        return handover.from_old(raw)

    def retired(self, number: int) -> bool:
        """Whether connection ``number`` was replaced (or lost): its frames are not wanted."""
        return number != self.serving and number != self.successor

    def lost(self) -> None:
        """The served connection ended: reconnect."""
        if self._phase not in _LIVE:
            raise InvalidStateError(f"{self.name}: lost while {self._phase.name}")
        self._set_phase(Phase.CONNECTING)
        self.serving = self.successor = 0
        self._end_handover()

    def close(self) -> None:
        """The client stopped (or failed for good)."""
        if self._phase is not Phase.CLOSED:
            self._set_phase(Phase.CLOSED)
        self.serving = self.successor = 0
        self._end_handover()

    def _end_handover(self) -> None:
        if self.handover is not None:
            self._duplicates += self.handover.duplicates
            self.handover = None

    def _set_phase(self, phase: Phase) -> None:
        if (self._phase, phase) not in _TRANSITIONS:
            raise InvalidStateError(f"{self.name}: {self._phase.name} -> {phase.name}")
        logger.debug("%s: %s -> %s", self.name, self._phase.name, phase.name)
        self._phase = phase
