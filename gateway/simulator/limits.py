"""Binance's limits as pure counters: time comes in as an argument, nothing sleeps.

* :class:`MessageRateLimiter` — incoming messages per connection (spot 5/s, futures 10/s, docs/binance.md §2).
* :class:`ConnectionAttemptLimiter` — connection attempts per IP (300 per 5 minutes, docs/binance.md §2).
* :class:`WeightCounter` / :class:`RestLimiter` — REST request weight per IP per minute, reported
  in ``X-MBX-USED-WEIGHT-1M``; over the limit a request gets 429 with ``Retry-After``, and a
  client that keeps going after a 429 is banned: 418 with ``Retry-After`` until the ban ends, bans
  doubling from 2 minutes up to 3 days (docs/binance.md §7).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

MAX_INCOMING_MESSAGES_PER_S = 5
"""Spot: "5 incoming messages per second" per connection (docs/binance.md §2)."""

REQUEST_WEIGHT_PER_MINUTE = 6_000
"""Spot's REQUEST_WEIGHT limit (docs/binance.md §7); advertised in exchangeInfo."""
MAX_BAN_S = 3 * 86_400.0

ENDPOINT_WEIGHTS: Mapping[str, int] = MappingProxyType(
    {
        # docs/binance.md §7. ping and time are not listed there; Binance documents weight 1 for both.
        "/api/v3/ping": 1,
        "/api/v3/time": 1,
        "/api/v3/exchangeInfo": 20,
        "/api/v3/aggTrades": 4,
        "/api/v3/trades": 25,
        "/api/v3/historicalTrades": 25,
    }
)


class MessageRateLimiter:
    """A sliding one-second window of incoming messages on one connection."""

    def __init__(self, limit: int, window_s: float = 1.0) -> None:
        self._limit = limit
        self._window_s = window_s
        self._times: deque[float] = deque()

    def allow(self, now_s: float) -> bool:
        """Record a message at monotonic time ``now_s``; ``False`` once over the limit."""
        times = self._times
        while times and now_s - times[0] >= self._window_s:
            times.popleft()
        times.append(now_s)
        return len(times) <= self._limit


class ConnectionAttemptLimiter:
    """Connection attempts per client IP in a sliding window (refused attempts count too)."""

    def __init__(self, limit: int, window_s: float = 300.0) -> None:
        self._limit = limit
        self._window_s = window_s
        self._attempts: dict[str, deque[float]] = {}

    def allow(self, client: str, now_s: float) -> bool:
        """Record an attempt; ``False`` when ``client`` made more than the limit in the window."""
        times = self._attempts.setdefault(client, deque())
        while times and now_s - times[0] >= self._window_s:
            times.popleft()
        times.append(now_s)
        return len(times) <= self._limit


class WeightCounter:
    """Used request weight per client IP in fixed windows of one clock minute."""

    def __init__(self, window_ms: int = 60_000) -> None:
        self._window_ms = window_ms
        self._used: dict[str, tuple[int, int]] = {}

    def add(self, client: str, weight: int, now_ms: int) -> int:
        """Charge ``weight`` to ``client`` at ``now_ms``; return its weight used this window."""
        window = now_ms // self._window_ms
        current_window, used = self._used.get(client, (window, 0))
        if current_window != window:
            used = 0
        used += weight
        self._used[client] = (window, used)
        return used


@dataclass(frozen=True, slots=True)
class RestDecision:
    """How to answer one REST request: 200 (serve), 429 or 418, and the headers' values."""

    status: int
    used_weight: int
    retry_after_s: int | None = None


@dataclass(slots=True)
class _Client:
    window: int = -1
    used: int = 0
    warned_window: int = -1
    banned_until: float = 0.0
    bans: int = 0


class RestLimiter:
    """Request weight per IP with Binance's 429-then-418 escalation."""

    def __init__(self, limit: int, window_s: float = 60.0, ban_s: float = 120.0) -> None:
        self._limit = limit
        self._window_s = window_s
        self._ban_s = ban_s
        self._clients: dict[str, _Client] = {}

    def charge(self, client: str, weight: int, now_s: float) -> RestDecision:
        """Charge a request of ``weight`` at monotonic ``now_s`` and decide its answer."""
        state = self._clients.setdefault(client, _Client())
        window = math.floor(now_s / self._window_s)
        if window != state.window:
            state.window, state.used = window, 0
        state.used += weight
        if state.banned_until > now_s:
            return RestDecision(418, state.used, math.ceil(state.banned_until - now_s))
        if state.used <= self._limit:
            return RestDecision(200, state.used)
        if state.warned_window == window:
            # It went on after a 429: banned, for longer each time.
            ban = min(self._ban_s * 2**state.bans, MAX_BAN_S)
            state.bans += 1
            state.banned_until = now_s + ban
            return RestDecision(418, state.used, math.ceil(ban))
        state.warned_window = window
        window_end = (window + 1) * self._window_s
        return RestDecision(429, state.used, max(1, math.ceil(window_end - now_s)))
