"""Reconnect and REST policy: capped, jittered backoff, retry-or-fatal classification, and
Binance's limits (connection attempts, REST weight shared by priority).

Pure: the caller owns the clock and the sleeping.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import random
from collections import deque
from collections.abc import Iterator

from gateway.errors import GatewayError

INITIAL_DELAY_S = 0.5
MAX_DELAY_S = 30.0
FACTOR = 2.0


def backoff(
    initial_s: float = INITIAL_DELAY_S,
    max_s: float = MAX_DELAY_S,
    factor: float = FACTOR,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Yield reconnect delays: exponential, capped at ``max_s``, with full jitter.

    Full jitter (a uniform draw below the exponential ceiling) spreads the reconnects of many
    connections that dropped at once, so they do not hit Binance's per-IP connection budget together.
    """
    draw = (rng or random.Random()).uniform
    ceiling = initial_s
    while True:
        yield draw(0.0, ceiling)
        ceiling = min(ceiling * factor, max_s)


class RetryDeadline:
    """Retry with capped, jittered backoff, but only for ``give_up_after_s`` from the start.

    For work that holds something back while it retries (a backfill holds a symbol's live trades):
    past the deadline ``next_delay`` returns None and the caller gives up in a declared way (a
    ``trade_gap`` record) instead of stalling for good.
    """

    def __init__(
        self, give_up_after_s: float, now_s: float, delays: Iterator[float] | None = None
    ) -> None:
        self._deadline_s = now_s + give_up_after_s
        self._delays = delays or backoff()

    def next_delay(self, now_s: float) -> float | None:
        """How long to wait before the next try; None once the deadline has passed."""
        remaining = self._deadline_s - now_s
        if remaining <= 0:
            return None
        return min(next(self._delays), remaining)


def is_retriable(exc: BaseException) -> bool:
    """Whether a failed connection is worth retrying: network trouble and upstream errors are.

    Anything else is a bug or a configuration error and must surface, not loop.
    """
    if isinstance(exc, GatewayError):
        return exc.retriable
    return isinstance(exc, OSError | TimeoutError | EOFError)


class SlidingWindowLimit:
    """At most ``limit`` events in any ``window_s`` seconds; the caller passes the clock.

    Binance counts connection attempts per IP (300 per 5 minutes on spot) and incoming messages
    per connection (5 per second on spot, 10 on futures, pings and pongs included) and
    disconnects or bans past them; every attempt goes through one of these first.
    """

    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a limit needs a positive count and window")
        self.limit = limit
        self.window_s = window_s
        self._times: deque[float] = deque()

    def delay(self, now: float) -> float:
        """Seconds to wait before one more event is allowed (0: now)."""
        self._expire(now)
        if len(self._times) < self.limit:
            return 0.0
        return self._times[0] + self.window_s - now

    def record(self, now: float) -> None:
        """Count one event at ``now`` (after waiting ``delay(now)``)."""
        self._expire(now)
        self._times.append(now)

    def _expire(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()


class RestPriority(enum.IntEnum):
    """Who goes first when one market's REST weight is short (lower first).

    After a fail-over the new owner's backfills and probes can spend a whole minute's weight;
    the plan (exchangeInfo) and the books must not wait for them.
    """

    CONTROL = 0
    """exchangeInfo (listings and delistings), account and listen-key calls, the ping."""
    SNAPSHOT = 1
    """Order-book snapshots: a book is unusable until its snapshot comes."""
    BACKFILL = 2
    """A trade hole's fetch (the symbol's live trades wait behind it, but nothing is lost), or
    the closed candles of a kline stream's hole."""
    PROBE = 3
    """A quiet symbol's catch-up after a reconnect or hand-over: usually finds nothing."""


PRIORITY_SHARE: dict[RestPriority, float] = {
    RestPriority.CONTROL: 1.0,
    RestPriority.SNAPSHOT: 0.95,
    RestPriority.BACKFILL: 0.9,
    RestPriority.PROBE: 0.6,
}
"""How much of the minute's budget each priority may fill: what a lower priority leaves is kept
for the higher ones. Backfill and probes together never take more than 90 %, so exchangeInfo
always finds 10 % of the minute free (spot 540 weight: 27 polls; futures 216: 216 polls) and
snapshots 5 %; probes, which usually find nothing, leave 40 % to backfill. Backfill's share is
large because live trades wait behind it: a fail-over's holes (a scale-out test's 50 USDⓈ-M
symbols, 20 weight each, several times) fill most of a futures minute."""


class RestWeightBudget:
    """Binance's per-IP REST weight, as Binance reports it, with its 429/418 back-off.

    ``X-MBX-USED-WEIGHT-1M`` on every answer says how much of the minute's budget is used; a 429
    or 418 carries ``Retry-After`` (seconds), and continuing after a 429 escalates to an IP ban
    (418, from 2 minutes up to 3 days), so after either nothing is sent until that time. Each
    :class:`RestPriority` may fill only its share of the minute (``PRIORITY_SHARE``); Binance's
    figure counts every process of the IP, so the reserve holds across workers too.
    """

    def __init__(self, limit_per_minute: int, *, headroom: float = 0.9) -> None:
        self.limit = int(limit_per_minute * headroom)
        self._used = 0
        self._minute = -1
        self._blocked_until = 0.0

    def delay(
        self, weight: int, now: float, priority: RestPriority = RestPriority.CONTROL
    ) -> float:
        """Seconds to wait before a request of ``weight`` may be sent (0: now)."""
        if now < self._blocked_until:
            return self._blocked_until - now
        minute = int(now // 60)
        used = self._used if minute == self._minute else 0
        # A request heavier than its share still goes, alone, at the start of a minute.
        limit = max(int(self.limit * PRIORITY_SHARE[priority]), min(weight, self.limit))
        if used + weight <= limit:
            return 0.0
        return (minute + 1) * 60 - now  # Binance resets the weight each clock minute

    def spend(self, weight: int, now: float) -> None:
        """Count a request we are about to send (before Binance's answer corrects it)."""
        self._roll(now)
        self._used += weight

    def observe(
        self, status: int, used_weight: int | None, retry_after_s: float | None, now: float
    ) -> None:
        """Take Binance's own figures from an answer: they win over our estimate."""
        self._roll(now)
        if used_weight is not None:
            self._used = used_weight
        if status in (418, 429):
            self._blocked_until = max(self._blocked_until, now + (retry_after_s or 60.0))

    def used(self, now: float) -> int:
        """Weight used in the current clock minute, as last reported or estimated."""
        return self._used if int(now // 60) == self._minute else 0

    def _roll(self, now: float) -> None:
        minute = int(now // 60)
        if minute != self._minute:
            self._minute, self._used = minute, 0


class RestTurns:
    """Requests waiting for one market's REST client, in the order they may go: by
    :class:`RestPriority`, then first come, first served.

    Pure bookkeeping; the client sends one request at a time and lets only :meth:`first` go.
    """

    def __init__(self) -> None:
        self._waiting: list[tuple[int, int]] = []
        self._arrivals = itertools.count()

    def join(self, priority: RestPriority) -> tuple[int, int]:
        """A request starts waiting; its ticket."""
        ticket = (int(priority), next(self._arrivals))
        heapq.heappush(self._waiting, ticket)
        return ticket

    def leave(self, ticket: tuple[int, int]) -> None:
        """The request went (or was cancelled)."""
        if ticket in self._waiting:
            self._waiting.remove(ticket)
            heapq.heapify(self._waiting)

    def first(self) -> tuple[int, int] | None:
        """The ticket whose turn it is; None: nobody waits."""
        return self._waiting[0] if self._waiting else None

    def __len__(self) -> int:
        return len(self._waiting)
