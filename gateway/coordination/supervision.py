"""When to restart a shard's failing connection, and when to say it keeps failing, pure.

A connection restarts itself on ordinary network trouble (see the WebSocket client). What
reaches the supervisor is what the client could not absorb. :func:`restarts` says which of
those are restarted (the outside world failing) and which stop the worker (a loss or a bug:
"let a bug crash", docs/errors.md). Restarting at once would hammer Binance (and spend the per-IP connection
budget), so restarts back off; and a shard that failed ``max_failures`` times within
``window_s`` is *failing*: reported (metric, log, readiness) and retried only every
``failing_retry_s`` until it stays up for a full window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

from gateway.binance.policy import backoff, is_retriable
from gateway.errors import ProtocolError


def restarts(exc: BaseException) -> bool:
    """Whether the supervisor restarts a connection that failed with ``exc``.

    Yes for the outside world failing: whatever is retriable (the network, Binance unreachable
    or refusing) and ``ProtocolError`` (Binance sent what we cannot use; bad input never crashes
    the worker). No for everything else: records lost to Kafka, a misconfiguration, a misused
    state machine, an exception outside the error tree. Those are a loss or a bug, and a restart
    would hide them; the worker stops and its shards move to another (gateway/errors.py).
    """
    return is_retriable(exc) or isinstance(exc, ProtocolError)


class RestartPolicy:
    """The restart schedule of one supervised task, with a clock passed in."""

    def __init__(
        self,
        max_failures: int,
        window_s: float,
        failing_retry_s: float,
        delays: Callable[[], Iterator[float]] = backoff,
    ) -> None:
        self._max_failures = max_failures
        self._window_s = window_s
        self._failing_retry_s = failing_retry_s
        self._failures: deque[float] = deque()
        self._backoff = delays
        """A fresh schedule of restart delays (a test passes a short one)."""
        self._delays: Iterator[float] = delays()

    def failed(self, now: float) -> float:
        """Record a failure at ``now``; returns how long to wait before the restart."""
        self._forget_before(now)
        self._failures.append(now)
        if self.failing:
            return self._failing_retry_s
        return next(self._delays)

    def ran(self, now: float) -> None:
        """The task has been running fine; old failures age out of the window."""
        self._forget_before(now)
        if not self._failures:
            self._delays = self._backoff()

    @property
    def failing(self) -> bool:
        return len(self._failures) >= self._max_failures

    def _forget_before(self, now: float) -> None:
        while self._failures and self._failures[0] <= now - self._window_s:
            self._failures.popleft()
