"""Trade-id continuity per symbol: duplicates dropped, gaps backfilled or declared, as pure code.

Trade ids (``t``) and aggregate-trade ids (``a``) are contiguous per symbol. One
:class:`IdContinuity` per symbol and stream kind sees every live event's id and decides:

* the next id: emit it;
* an id already emitted (a rotation overlap, a replayed frame): drop it, it reached Kafka once;
* an id past a hole: hold live events back, ask for the missing range through
  ``requests_to_send()`` (``FetchRange``), and when ``receive_backfill`` brings it, emit the range
  (marked backfilled) and then the held live events, in id order. What REST cannot return any
  more is declared with an :class:`IdGap` so consumers know exactly which ids are missing.

Plausibility comes before trust (issue 13), so one bad id never poisons the symbol's state:

* a negative id, or one further behind the last published than ``max_behind`` (more than any
  overlap or reconnect replays), is rejected: it comes out of ``to_reject()`` with the reason;
* an id more than ``max_jump`` ahead is quarantined: it changes nothing until ``confirmations``
  contiguous ids agree with it (a genuine jump, after a long disconnect: then it is a hole like any
  other), and is rejected as soon as a plausible id shows the stream went on where it was.

The caller owns the I/O (the REST request, its pacing) and the clock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FetchRange:
    """Request: fetch ids ``first_id..last_id`` (inclusive) over REST."""

    first_id: int
    last_id: int


@dataclass(frozen=True, slots=True)
class IdGap:
    """Ids ``first_id..last_id`` are lost: Binance no longer serves them."""

    first_id: int
    last_id: int


MAX_ID_JUMP = 100_000
MAX_ID_BEHIND = 10_000
ID_JUMP_CONFIRMATIONS = 3


@dataclass(frozen=True, slots=True)
class IdBounds:
    """Plausibility bounds of live ids (settings ``binance.max_id_jump``, ``max_id_behind``,
    ``id_jump_confirmations``; docs/delivery.md)."""

    max_jump: int = MAX_ID_JUMP
    max_behind: int = MAX_ID_BEHIND
    confirmations: int = ID_JUMP_CONFIRMATIONS


@dataclass(frozen=True, slots=True)
class Rejected(Generic[T]):
    """An implausible live event: kept out of the sequence, to be dead-lettered with ``reason``."""

    event_id: int
    event: T
    reason: str


@dataclass(frozen=True, slots=True)
class Emit(Generic[T]):
    """Publish this event; ``backfilled`` when it came from REST rather than the stream."""

    event_id: int
    event: T
    backfilled: bool


class IdContinuity(Generic[T]):
    """The id bookkeeping of one symbol's trades (or aggregate trades)."""

    def __init__(
        self,
        last_emitted_id: int | None = None,
        *,
        max_held: int = 100_000,
        max_jump: int = MAX_ID_JUMP,
        max_behind: int = MAX_ID_BEHIND,
        confirmations: int = ID_JUMP_CONFIRMATIONS,
    ) -> None:
        """``last_emitted_id``: where a previous owner stopped (None: accept the first id seen).
        ``max_jump``, ``max_behind``, ``confirmations``: the plausibility bounds (module doc)."""
        self.last_emitted_id = last_emitted_id
        self._held: dict[int, tuple[T, bool]] = {}  # id -> (event, came from REST)
        self._max_held = max_held
        self._max_jump = max_jump
        self._max_behind = max_behind
        self._confirmations = confirmations
        self._quarantine: dict[int, T] = {}  # a contiguous run of ids far ahead, unconfirmed
        self._rejected: list[Rejected[T]] = []
        self._fetching: FetchRange | None = None
        self._requests: list[FetchRange] = []
        self._out: list[Emit[T] | IdGap] = []
        self.duplicates = 0

    @property
    def backfilling(self) -> bool:
        return self._fetching is not None

    def take_next(self, event_id: int) -> bool:
        """The steady state's shortcut around :meth:`receive_live`: if ``event_id`` is the next
        id and nothing is held back, quarantined or waiting in :meth:`to_emit`, it is
        taken as emitted and True is returned: the caller publishes the event itself, after
        everything emitted before. Otherwise False, nothing changed: call ``receive_live``."""
        last = self.last_emitted_id
        if last is None or event_id != last + 1 or self._held or self._quarantine or self._out:
            return False
        self.last_emitted_id = event_id
        return True

    def receive_live(self, event_id: int, event: T) -> None:
        """An event from the stream."""
        if event_id < 0:
            self._rejected.append(Rejected(event_id, event, f"negative id {event_id}"))
            return
        last = self.last_emitted_id
        if last is None or (event_id == last + 1 and not self._held):
            self._refute_quarantine(event_id)
            self._emit(event_id, event, backfilled=False)
            return
        if event_id <= last or event_id in self._held:
            if last - event_id > self._max_behind:
                reason = (
                    f"id {event_id} is {last - event_id} behind the last published id {last}, "
                    f"more than max_id_behind {self._max_behind}"
                )
                self._rejected.append(Rejected(event_id, event, reason))
            else:
                self.duplicates += 1
            return
        frontier = max(self._held) if self._held else last
        if event_id - frontier > self._max_jump:
            self._suspect(event_id, event, frontier)
            return
        self._refute_quarantine(event_id)
        self._hold(event_id, event)

    def _hold(self, event_id: int, event: T) -> None:
        last = self.last_emitted_id
        assert last is not None
        self._held[event_id] = (event, False)
        if len(self._held) > self._max_held:
            # Kafka or REST is far behind: give up the oldest hole rather than grow without bound.
            self._declare_lost(last + 1, min(self._held) - 1)
        self._drain_held()
        self._request_missing()

    def receive_backfill(self, events: Iterable[tuple[int, T]]) -> None:
        """What REST returned for the last ``FetchRange`` (any order, may be partial)."""
        fetched = self._fetching
        self._fetching = None
        if fetched is None:
            return
        for event_id, event in events:
            last = self.last_emitted_id
            if (
                last is None or event_id > last
            ) and fetched.first_id <= event_id <= fetched.last_id:
                self._held.setdefault(event_id, (event, True))
        before = self.last_emitted_id
        self._drain_held()
        if self.last_emitted_id == before:
            # REST had nothing from the start of the hole: those ids are beyond its history.
            assert before is not None
            self._declare_lost(before + 1, self._first_held_or(fetched.last_id + 1) - 1)
            self._drain_held()
        self._request_missing()

    def backfill_abandoned(self) -> None:
        """The fetch kept failing past its deadline: the range it asked for is declared lost and
        the held live events go out, so one bad REST answer never stalls the symbol."""
        fetched = self._fetching
        self._fetching = None
        if fetched is None or self.last_emitted_id is None:
            return
        self._declare_lost(self.last_emitted_id + 1, self._first_held_or(fetched.last_id + 1) - 1)
        self._drain_held()
        self._request_missing()

    @property
    def holding(self) -> bool:
        """Whether live events wait behind a hole."""
        return bool(self._held)

    def probe_from(self) -> int | None:
        """After a reconnect or a hand-over the stream stayed quiet through: the first id to ask
        REST for, since its next trade may be hours away. None when a probe would learn nothing:
        no id is known to continue from, or a hole is already held or being fetched (that fetch
        reaches up to the live ids)."""
        if self.last_emitted_id is None or self._held or self._fetching is not None:
            return None
        return self.last_emitted_id + 1

    def backfill_failed(self) -> None:
        """The fetch failed for a transient reason: ask again (the caller paces retries)."""
        self._fetching = None
        self._request_missing()

    def to_reject(self) -> list[Rejected[T]]:
        rejected, self._rejected = self._rejected, []
        return rejected

    def _suspect(self, event_id: int, event: T, frontier: int) -> None:
        """Quarantine an id far ahead; accept the run once ``confirmations`` contiguous ids agree."""
        run = self._quarantine
        if event_id in run:
            self.duplicates += 1
            return
        if run and event_id != max(run) + 1:
            self._refute_quarantine(event_id)  # a different far-ahead id: the old run was noise
        run[event_id] = event
        if len(run) < self._confirmations:
            return
        logger.warning(
            "ids jumped from %d to %d and %d contiguous ids confirm it: treated as a hole",
            frontier,
            min(run),
            len(run),
        )
        confirmed = sorted(run.items())
        run.clear()
        for confirmed_id, confirmed_event in confirmed:
            self._hold(confirmed_id, confirmed_event)

    def _refute_quarantine(self, event_id: int) -> None:
        """A plausible id arrived: whatever was quarantined was not where the stream is."""
        for suspect_id, suspect in sorted(self._quarantine.items()):
            reason = (
                f"id {suspect_id} jumped more than max_id_jump {self._max_jump} ahead, and the "
                f"stream went on at {event_id}"
            )
            self._rejected.append(Rejected(suspect_id, suspect, reason))
        self._quarantine.clear()

    def requests_to_send(self) -> list[FetchRange]:
        requests, self._requests = self._requests, []
        return requests

    def to_emit(self) -> list[Emit[T] | IdGap]:
        out, self._out = self._out, []
        return out

    def _emit(self, event_id: int, event: T, *, backfilled: bool) -> None:
        self._out.append(Emit(event_id, event, backfilled))
        self.last_emitted_id = event_id

    def _drain_held(self) -> None:
        while self.last_emitted_id is not None and self.last_emitted_id + 1 in self._held:
            event_id = self.last_emitted_id + 1
            event, backfilled = self._held.pop(event_id)
            self._emit(event_id, event, backfilled=backfilled)

    def _request_missing(self) -> None:
        if self._fetching is not None or not self._held or self.last_emitted_id is None:
            return
        self._fetching = FetchRange(self.last_emitted_id + 1, min(self._held) - 1)
        self._requests.append(self._fetching)

    def _declare_lost(self, first_id: int, last_id: int) -> None:
        if first_id > last_id:
            return
        logger.warning("ids %d..%d cannot be recovered; publishing a gap record", first_id, last_id)
        self._out.append(IdGap(first_id, last_id))
        self.last_emitted_id = last_id
        for event_id in [i for i in self._held if i <= last_id]:
            del self._held[event_id]

    def _first_held_or(self, default: int) -> int:
        return min(self._held) if self._held else default
